// t2c_requant: the requantizer of SPEC section 2 and the runtime rounding profiles of SPEC
// section 10, fully pipelined (one input per cycle), mode selected per input.
//
//   mode 0..3 (section 2):  y = clamp(z_y + round_shift(acc * M0, sh, mode), lo, hi)
//
//   acc  signed ACC_BITS, M0 unsigned MULT_BITS, sh in [0, 2^SHIFT_BITS - 1] (at most 63),
//   z_y, lo, hi and y signed Y_BITS (lo <= hi is the caller's contract).
//
//   round_shift(v, s, mode), exactly as t2c_sim.numerics.round_shift, with
//   q = floor(v / 2^s) = v >>> s, r = v - q * 2^s, h = 2^(s-1):
//     mode 0 half_even : q + (r > h || (r == h && q odd))
//     mode 1 half_up   : q + (r >= h)
//     mode 2 half_away : q + (r > h || (r == h && v >= 0))
//     mode 3 floor     : q
//   and s = 0 returns v. In bits: half = v[s-1] (r >= h), sticky = |v[s-2:0] (r != 0 mod h),
//   so r > h is half & sticky and r == h is half & !sticky.
//
//   mode 4..6 (PROFILES = 1): the profiles of t2c_sim.rounding_profiles, bit for bit, on the
//   int32 accumulator a = acc (sign-extended, or its low 32 bits when ACC_BITS > 32), with the
//   record's M0/sh (M0 / 2^sh is the runtime's multiplier):
//     4 ort_fp32      (ONNX Runtime / MLAS; M0 = float32 significand of m32 in [2^23, 2^24),
//                     sh = 150 - its biased exponent): f1 = float32(|a|) = a_sig * 2^k1
//                     (k1 = max(bitlen(|a|) - 24, 0), a_sig = RNE(|a| / 2^k1): the float32
//                     conversion, round half even, sticky bit included); f2 = float32(f1 * m32)
//                     = p_sig * 2^(k1 + k2 - sh) (p = a_sig * M0 exact, k2 = max(bitlen(p) - 24,
//                     0), p_sig = RNE(p / 2^k2)); y = clamp(z_y + sign(a) * rint_even(f2), lo, hi)
//                     with rint_even(f2) = p_sig << (k1+k2-sh) or RNE(p_sig / 2^(sh-k1-k2)).
//     5 tflite_double (gemmlowp): left = max(31 - sh, 0), right = max(sh - 31, 0);
//                     x = int32(a << left); s = SRDHM(x, M0) = floor((x * M0 + 2^30) / 2^31)
//                     (the nudge 2^30 / 1 - 2^30 with C's truncating division is exactly this:
//                     round to nearest, ties toward +inf); r = RDBPOT(s, right) =
//                     round_shift(s, right, half_away); y = clamp(int32(r + z_y), lo, hi).
//     6 tflite_single (TFLITE_SINGLE_ROUNDING, ruy): r = int32((a * M0 + 2^(sh-1)) >> sh) =
//                     int32(round_shift(a * M0, sh, half_up)); y = clamp(int32(r + z_y), lo, hi).
//   No float is used: every step is integer arithmetic on the bits above. M0/sh outside the
//   profile's range (rounding_profiles.check_params) are the host's error (it refuses them).
//   Code 7, and codes 4..6 when PROFILES = 0, compute as section-2 mode (code & 3); the top
//   refuses such runs (t2c_accel_top err_o[5]).
//
//   Widths: the product is exact in P_BITS = OPA_BITS + MULT_BITS + 1 signed bits (OPA_BITS =
//   ACC_BITS, at least 32 with profiles); the rounded value fits P_BITS (|q| <= |v| / 2 when
//   s >= 1); ort_fp32's left shift fits R_BITS = P_BITS + 10; z_y + rounded is computed in
//   S_BITS = max(R_BITS, Y_BITS) + 1 bits, which never overflows; the clamp compares at that
//   width, so a huge value saturates to lo or hi (nothing is truncated before it; the TFLite
//   profiles wrap to int32 first, as the runtime's C++ does).
//
// Pipeline: LATENCY = 3 registers, for every mode. Inputs presented in cycle t (sampled by the
// rising edge that ends it) appear on valid_o/y_o in cycle t + LATENCY:
//   stage 1: prod_q  = opa * M0                 (opa = acc; ort_fp32: float32(|acc|)'s
//                                                significand; tflite_double: int32(acc << left))
//   stage 2: rnd_q   = round_shift(prod_q, s2, m2)   (section 2 / tflite_single: (sh, mode /
//                                                half_up); tflite_double: (31, half_up) = SRDHM;
//                                                ort_fp32: (k2, half_even) = the float32 product)
//   stage 3: y_q     = clamp(z_y + r3, lo, hi)  (r3 = rnd_q; tflite_double: RDBPOT(rnd_q, right);
//                                                ort_fp32: +-rint_even(p_sig * 2^(k1+k2-sh));
//                                                TFLite: int32 wraps)
// Only the valid pipeline is reset (rst_ni, active low, synchronous); data registers are not,
// and load only when their stage holds a valid input (clock enables: an idle requantizer does
// no work, which an event-driven simulator sees as one cheap process wake per cycle). The
// profile logic is a generate block: a PROFILES = 0 build has none of it.
`timescale 1ns / 1ps
`default_nettype none

module t2c_requant #(
  parameter integer ACC_BITS   = 32, // accumulator width (signed), 2..64
  parameter integer MULT_BITS  = 32, // M0 width (unsigned), 1..64
  parameter integer SHIFT_BITS = 6,  // sh in [0, 2^SHIFT_BITS-1], max 63 (SHIFT_BITS 1..6)
  parameter integer Y_BITS     = 16, // width of zero point, clamp bounds and output (signed), 2..64
  parameter integer PROFILES   = 1   // 1: rounding profiles (codes 4..6) built, 0: section 2 only
) (
  input  wire                         clk_i,
  input  wire                         rst_ni,   // active-low reset (control only)
  input  wire                         valid_i,
  input  wire signed [ACC_BITS-1:0]   acc_i,
  input  wire        [MULT_BITS-1:0]  m0_i,
  input  wire        [SHIFT_BITS-1:0] sh_i,
  input  wire signed [Y_BITS-1:0]     zy_i,
  input  wire signed [Y_BITS-1:0]     lo_i,
  input  wire signed [Y_BITS-1:0]     hi_i,
  // 0 half_even, 1 half_up, 2 half_away, 3 floor (RoundMode.code),
  // 4 ort_fp32, 5 tflite_double, 6 tflite_single (RoundProfile.code)
  input  wire        [2:0]            mode_i,
  output wire                         valid_o,
  output wire signed [Y_BITS-1:0]     y_o
);

  // Cycles from an input to its output.
  localparam integer LATENCY = 3;
  localparam integer PROF = (PROFILES != 0) ? 1 : 0;
  // First multiplier operand: acc, or (profiles) a 32-bit value.
  localparam integer OPA_BITS = (PROF == 1 && ACC_BITS < 32) ? 32 : ACC_BITS;
  // Exact signed product width (signed OPA_BITS times M0 zero-extended to MULT_BITS + 1).
  localparam integer P_BITS = OPA_BITS + MULT_BITS + 1;
  // Width of the stage-3 value (ort_fp32 shifts its 25-bit significand left by up to
  // 8 + P_BITS - 24 bits).
  localparam integer R_BITS = (PROF == 1) ? P_BITS + 10 : P_BITS;
  // Width of z_y + rounded and of the clamp comparison: never overflows.
  localparam integer S_BITS = ((R_BITS > Y_BITS) ? R_BITS : Y_BITS) + 1;

  localparam [1:0] MODE_HALF_EVEN = 2'd0;
  localparam [1:0] MODE_HALF_UP   = 2'd1;
  localparam [1:0] MODE_HALF_AWAY = 2'd2;

  initial begin
    if (ACC_BITS < 2 || ACC_BITS > 64) begin
      $fatal(1, "%m: ACC_BITS=%0d is outside 2..64", ACC_BITS);
    end
    if (MULT_BITS < 1 || MULT_BITS > 64) begin
      $fatal(1, "%m: MULT_BITS=%0d is outside 1..64", MULT_BITS);
    end
    if (SHIFT_BITS < 1 || SHIFT_BITS > 6) begin
      $fatal(1, "%m: SHIFT_BITS=%0d is outside 1..6 (shifts are at most 63)", SHIFT_BITS);
    end
    if (Y_BITS < 2 || Y_BITS > 64) begin
      $fatal(1, "%m: Y_BITS=%0d is outside 2..64", Y_BITS);
    end
    if (PROFILES != 0 && PROFILES != 1) begin
      $fatal(1, "%m: PROFILES=%0d must be 0 or 1", PROFILES);
    end
  end

  // ---------------------------------------------------------------- pipeline registers
  reg signed [P_BITS-1:0]     prod_q;
  reg        [SHIFT_BITS-1:0] sh1_q;
  reg        [2:0]            mode1_q;
  reg signed [Y_BITS-1:0]     zy1_q, lo1_q, hi1_q;
  reg signed [P_BITS-1:0]     rnd_q;
  reg signed [Y_BITS-1:0]     zy2_q, lo2_q, hi2_q;
  reg signed [Y_BITS-1:0]     y_q;
  // One valid bit per stage; vld_q[i] qualifies (and enables) stage i+1's data registers.
  reg        [LATENCY-1:0]    vld_q;

  // Profile interface (driven by g_prof, or by its section-2-only stand-in):
  //   stage 1: prof1_sel / opa_p replace the multiplier operand;
  //   stage 2: s2_p / m2_p are the shift and mode of the stage-2 rounding;
  //   stage 3: r3_p is the value added to z_y, wrap32_p wraps z_y + r3 to int32.
  wire                       prof1_sel;
  wire signed [OPA_BITS-1:0] opa_p;
  wire        [7:0]          s2_p;
  wire        [1:0]          m2_p;
  wire signed [R_BITS-1:0]   r3_p;
  wire                       wrap32_p;

  // ---------------------------------------------------------------- stage 1: exact product
  reg signed [OPA_BITS-1:0] opa_d;
  reg signed [P_BITS-1:0]   prod_d;

  always @* begin
    // signed context: acc_i is sign-extended to OPA_BITS, then (P_BITS context) the product is
    // exact with {1'b0, m0_i} zero-extended (IEEE 1364 5.5; a replication here costs Icarus an
    // operation per bit)
    /* verilator lint_off WIDTHEXPAND */
    opa_d = acc_i;
    if (prof1_sel) begin
      opa_d = opa_p;
    end
    prod_d = opa_d * $signed({1'b0, m0_i});
    /* verilator lint_on WIDTHEXPAND */
  end

  // ---------------------------------------------------------------- stage 2: round_shift
  reg signed [P_BITS-1:0] rnd_d;
  reg signed [P_BITS-1:0] q_d;
  // Only bit 0 of v >>> (s-1) is the half bit; the other bits are a by-product of the shift.
  /* verilator lint_off UNUSEDSIGNAL */
  reg signed [P_BITS-1:0] hs_d;
  /* verilator lint_on UNUSEDSIGNAL */
  reg        [P_BITS-1:0] sticky_mask_d;
  reg                     half_d, sticky_d, up_d;

  always @* begin
    q_d           = prod_q >>> s2_p;
    half_d        = 1'b0;
    sticky_d      = 1'b0;
    up_d          = 1'b0;
    sticky_mask_d = {P_BITS{1'b0}};
    hs_d          = {P_BITS{1'b0}};
    if (s2_p != 8'd0) begin
      // v[s-1]: the arithmetic shift sign-extends, so s-1 >= P_BITS reads the sign bit.
      hs_d          = prod_q >>> (s2_p - 1'b1);
      half_d        = hs_d[0];
      // bits v[s-2:0]; a shift by >= P_BITS yields 0, so the mask covers every bit then.
      sticky_mask_d = ~({P_BITS{1'b1}} << (s2_p - 1'b1));
      sticky_d      = |(prod_q & sticky_mask_d);
      case (m2_p)
        MODE_HALF_EVEN: up_d = half_d & (sticky_d | q_d[0]);
        MODE_HALF_UP:   up_d = half_d;
        MODE_HALF_AWAY: up_d = half_d & (sticky_d | ~prod_q[P_BITS-1]);
        default:        up_d = 1'b0;  // floor
      endcase
    end
    rnd_d = q_d + $signed({{(P_BITS - 1){1'b0}}, up_d});
  end

  // ---------------------------------------------------------------- stage 3: z_y + clamp
  reg signed [Y_BITS-1:0] y_d;
  reg signed [S_BITS-1:0] sum_d, lo_x_d, hi_x_d;

  always @* begin
    // signed context of S_BITS: every operand is sign-extended (IEEE 1364 5.5)
    /* verilator lint_off WIDTHEXPAND */
    sum_d  = r3_p + zy2_q;
    if (wrap32_p) begin
      sum_d = $signed(sum_d[31:0]);  // int32(r + z_y), as the runtime's C++ stores it
    end
    lo_x_d = lo2_q;
    hi_x_d = hi2_q;
    /* verilator lint_on WIDTHEXPAND */
    y_d    = sum_d[Y_BITS-1:0];
    if (sum_d < lo_x_d) begin
      y_d = lo2_q;
    end else if (sum_d > hi_x_d) begin
      y_d = hi2_q;
    end
  end

  // ---------------------------------------------------------------- profiles (or not)
  generate
    if (PROF == 1) begin : g_prof
      localparam [2:0] ORT_FP32      = 3'd4;
      localparam [2:0] TFLITE_DOUBLE = 3'd5;
      localparam [2:0] TFLITE_SINGLE = 3'd6;
      localparam integer V3 = 34;  // stage-3 operand: int32 (tflite_double) or +-2^24 (ort_fp32)

      // stage-1 -> stage-2 registers of the profiles
      reg [3:0] k1_q;              // ort_fp32: float32(|a|) = a_sig * 2^k1
      reg       neg1_q, neg2_q;    // ort_fp32: a < 0
      reg [2:0] mode2_q;
      reg signed [7:0] e3_q;       // stage-3 shift (ort_fp32: sh - k1 - k2; tflite_double: right)

      // ---- stage 1: the multiplier operand
      reg signed [31:0] a32;
      reg        [31:0] absa, q1, smask1;
      reg        [5:0]  l1;
      /* verilator lint_off UNUSEDSIGNAL */ // l1m <= 8 (l1 <= 32): only its low bits are k1
      reg        [5:0]  l1m;
      /* verilator lint_on UNUSEDSIGNAL */
      reg        [3:0]  k1;
      reg               h1, st1;
      reg        [5:0]  left;
      reg signed [OPA_BITS-1:0] opa;
      integer           i1;

      always @* begin
        /* verilator lint_off WIDTHEXPAND */
        /* verilator lint_off WIDTHTRUNC */
        a32 = acc_i;               // sign-extended (or the low 32 bits when ACC_BITS > 32)
        /* verilator lint_on WIDTHTRUNC */
        absa  = 32'd0;  q1 = 32'd0;  smask1 = 32'd0;  l1 = 6'd0;  l1m = 6'd0;  k1 = 4'd0;
        h1 = 1'b0;  st1 = 1'b0;  left = 6'd0;
        opa = acc_i;
        /* verilator lint_on WIDTHEXPAND */
        case (mode_i)
          ORT_FP32: begin
            // float32(|a|): |a| <= 2^31 fits 32 unsigned bits; keep 24 significant bits
            absa = a32[31] ? (~a32 + 32'd1) : a32;
            for (i1 = 0; i1 < 32; i1 = i1 + 1) begin
              if (absa[i1]) l1 = i1[5:0] + 6'd1;
            end
            l1m = l1 - 6'd24;
            k1  = (l1 > 6'd24) ? l1m[3:0] : 4'd0;      // l1 - 24 <= 8
            q1 = absa >> k1;
            if (k1 != 4'd0) begin
              h1     = absa[{1'b0, k1} - 5'd1];
              smask1 = ~(32'hFFFF_FFFF << (k1 - 4'd1));
              st1    = |(absa & smask1);
            end
            // round half to even: up when above half, or at half with an odd quotient
            /* verilator lint_off WIDTHEXPAND */
            opa = $signed(q1 + {31'd0, h1 & (st1 | q1[0])});   // <= 2^24
            /* verilator lint_on WIDTHEXPAND */
          end
          TFLITE_DOUBLE: begin
            // x = int32(a << left), left = max(31 - sh, 0)
            /* verilator lint_off WIDTHEXPAND */
            left = (sh_i < 31) ? 6'd31 - sh_i : 6'd0;
            opa  = $signed(a32 << left);
            /* verilator lint_on WIDTHEXPAND */
          end
          default: begin
            // section 2 and tflite_single: the accumulator itself
          end
        endcase
      end

      assign prof1_sel = (mode_i == ORT_FP32) || (mode_i == TFLITE_DOUBLE);
      assign opa_p     = opa;

      // ---- stage 2: the shift and mode of the rounding, and the stage-3 shift
      reg [7:0] l2, k2, s2;
      reg [1:0] m2;
      reg signed [7:0] e3;
      integer   i2;

      always @* begin
        s2 = {{(8 - SHIFT_BITS){1'b0}}, sh1_q};
        m2 = mode1_q[1:0];
        l2 = 8'd0;
        k2 = 8'd0;
        e3 = 8'sd0;
        case (mode1_q)
          ORT_FP32: begin
            // float32(a_sig * m32): the exact product (>= 0) rounded to 24 significant bits
            for (i2 = 0; i2 < P_BITS; i2 = i2 + 1) begin
              if (prod_q[i2]) l2 = i2[7:0] + 8'd1;
            end
            k2 = (l2 > 8'd24) ? l2 - 8'd24 : 8'd0;
            s2 = k2;
            m2 = MODE_HALF_EVEN;
            /* verilator lint_off WIDTHEXPAND */
            e3 = $signed({2'b00, sh1_q}) - $signed({4'b0000, k1_q}) - $signed(k2);
            /* verilator lint_on WIDTHEXPAND */
          end
          TFLITE_DOUBLE: begin
            // SRDHM = round_shift(x * M0, 31, half_up); then RDBPOT by right = max(sh - 31, 0)
            s2 = 8'd31;
            m2 = MODE_HALF_UP;
            /* verilator lint_off WIDTHEXPAND */
            e3 = (sh1_q > 31) ? $signed({2'b00, sh1_q}) - 8'sd31 : 8'sd0;
            /* verilator lint_on WIDTHEXPAND */
          end
          TFLITE_SINGLE: begin
            m2 = MODE_HALF_UP;   // (a * M0 + 2^(sh-1)) >> sh
          end
          default: begin
          end
        endcase
      end

      assign s2_p = s2;
      assign m2_p = m2;

      // ---- stage 3: the second rounding (ort_fp32, tflite_double) and the int32 wraps
      reg signed [V3-1:0]     v3, q3;
      /* verilator lint_off UNUSEDSIGNAL */ // only bit 0 (the half bit) is used
      reg signed [V3-1:0]     hs3;
      /* verilator lint_on UNUSEDSIGNAL */
      reg        [V3-1:0]     smask3;
      reg                     h3, st3, up3;
      reg signed [R_BITS-1:0] r3;
      reg        [5:0]        e3a;

      always @* begin
        v3 = {V3{1'b0}};  q3 = {V3{1'b0}};  hs3 = {V3{1'b0}};  smask3 = {V3{1'b0}};
        h3 = 1'b0;  st3 = 1'b0;  up3 = 1'b0;  e3a = 6'd0;
        /* verilator lint_off WIDTHEXPAND */
        r3 = rnd_q;
        case (mode2_q)
          ORT_FP32, TFLITE_DOUBLE: begin
            if (mode2_q == ORT_FP32) begin
              // +-p_sig (0 <= p_sig <= 2^24): rint_even is symmetric, so round the signed value
              v3 = neg2_q ? -$signed({1'b0, rnd_q[V3-2:0]}) : $signed({1'b0, rnd_q[V3-2:0]});
            end else begin
              v3 = $signed(rnd_q[31:0]);   // the int32 SRDHM result
            end
            if (e3_q > 8'sd0) begin
              e3a = e3_q[5:0];
              q3  = v3 >>> e3a;
              hs3 = v3 >>> (e3a - 1'b1);
              h3  = hs3[0];
              smask3 = ~({V3{1'b1}} << (e3a - 1'b1));
              st3 = |(v3 & smask3);
              // ort_fp32: half to even; tflite_double (RDBPOT): half away from zero
              up3 = (mode2_q == ORT_FP32) ? h3 & (st3 | q3[0]) : h3 & (st3 | ~v3[V3-1]);
              r3  = q3 + $signed({{(V3 - 1){1'b0}}, up3});
            end else if (mode2_q == ORT_FP32) begin
              r3 = v3 <<< (-e3_q);          // f2 >= 2^24: an integer already
            end else begin
              r3 = v3;                       // RDBPOT by 0
            end
          end
          TFLITE_SINGLE: begin
            r3 = $signed(rnd_q[31:0]);       // int32 of the shifted product
          end
          default: begin
          end
        endcase
        /* verilator lint_on WIDTHEXPAND */
      end

      assign r3_p     = r3;
      assign wrap32_p = (mode2_q == TFLITE_DOUBLE) || (mode2_q == TFLITE_SINGLE);

      always @(posedge clk_i) begin
        if (valid_i) begin
          k1_q   <= k1;
          neg1_q <= a32[31];
        end
        if (vld_q[0]) begin
          mode2_q <= mode1_q;
          neg2_q  <= neg1_q;
          e3_q    <= e3;
        end
      end
    end else begin : g_noprof
      // section 2 only: mode bit 2 is ignored (the top refuses codes 4..7 in such a build)
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_mode2 = mode1_q[2];
      /* verilator lint_on UNUSEDSIGNAL */
      assign prof1_sel = 1'b0;
      assign opa_p     = {OPA_BITS{1'b0}};
      assign s2_p      = {{(8 - SHIFT_BITS){1'b0}}, sh1_q};
      assign m2_p      = mode1_q[1:0];
      assign r3_p      = rnd_q;
      assign wrap32_p  = 1'b0;
    end
  endgenerate

  // ---------------------------------------------------------------- registers
  always @(posedge clk_i) begin
    if (valid_i || vld_q != {LATENCY{1'b0}} || !rst_ni) begin
      if (valid_i) begin
        prod_q  <= prod_d;
        sh1_q   <= sh_i;
        mode1_q <= mode_i;
        zy1_q   <= zy_i;
        lo1_q   <= lo_i;
        hi1_q   <= hi_i;
      end
      if (vld_q[0]) begin
        rnd_q <= rnd_d;
        zy2_q <= zy1_q;
        lo2_q <= lo1_q;
        hi2_q <= hi1_q;
      end
      if (vld_q[1]) begin
        y_q <= y_d;
      end
      if (!rst_ni) begin
        vld_q <= {LATENCY{1'b0}};
      end else begin
        vld_q <= {vld_q[LATENCY-2:0], valid_i};
      end
    end
  end

  assign valid_o = vld_q[LATENCY-1];
  assign y_o     = y_q;

endmodule

`default_nettype wire
