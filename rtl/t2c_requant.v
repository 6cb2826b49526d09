// t2c_requant: the requantizer of SPEC section 2, fully pipelined (one input per cycle).
//
//   y = clamp(z_y + round_shift(acc * M0, sh, mode), lo, hi)
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
//   Widths: the product is exact in P_BITS = ACC_BITS + MULT_BITS + 1 signed bits; the rounded
//   value fits P_BITS (|q| <= |v| / 2 when s >= 1); z_y + rounded is computed in
//   S_BITS = max(P_BITS, Y_BITS) + 1 bits, which never overflows; the clamp compares at that
//   width, so a huge shifted value saturates to lo or hi (nothing is truncated before it).
//
// Pipeline: LATENCY = 3 registers. Inputs presented in cycle t (sampled by the rising edge that
// ends it) appear on valid_o/y_o in cycle t + LATENCY, i.e. after the third rising edge:
//   stage 1: prod_q  = acc * M0                 (registers sh, z_y, lo, hi, mode alongside)
//   stage 2: rnd_q   = round_shift(prod_q, sh, mode)
//   stage 3: y_q     = clamp(z_y + rnd_q, lo, hi)
// Only the valid pipeline is reset (rst_ni, active low, synchronous); data registers are not,
// and load only when their stage holds a valid input (clock enables: an idle requantizer does
// no work, which an event-driven simulator sees as one cheap process wake per cycle).
`timescale 1ns / 1ps
`default_nettype none

module t2c_requant #(
  parameter integer ACC_BITS   = 32, // accumulator width (signed), 2..64
  parameter integer MULT_BITS  = 32, // M0 width (unsigned), 1..64
  parameter integer SHIFT_BITS = 6,  // sh in [0, 2^SHIFT_BITS-1], max 63 (SHIFT_BITS 1..6)
  parameter integer Y_BITS     = 16  // width of zero point, clamp bounds and output (signed), 2..64
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
  input  wire        [1:0]            mode_i,   // 0 half_even, 1 half_up, 2 half_away, 3 floor (RoundMode.code)
  output wire                         valid_o,
  output wire signed [Y_BITS-1:0]     y_o
);

  // Cycles from an input to its output.
  localparam integer LATENCY = 3;
  // Exact signed product width (signed ACC_BITS times M0 zero-extended to MULT_BITS + 1).
  localparam integer P_BITS = ACC_BITS + MULT_BITS + 1;
  // Width of z_y + rounded and of the clamp comparison: never overflows.
  localparam integer S_BITS = ((P_BITS > Y_BITS) ? P_BITS : Y_BITS) + 1;

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
  end

  // ---------------------------------------------------------------- stage 1: exact product
  reg signed [P_BITS-1:0]     prod_q, prod_d;
  reg        [SHIFT_BITS-1:0] sh1_q;
  reg        [1:0]            mode1_q;
  reg signed [Y_BITS-1:0]     zy1_q, lo1_q, hi1_q;

  always @* begin
    // signed context of P_BITS: acc_i is sign-extended, {1'b0, m0_i} zero-extended (IEEE 1364
    // 5.5), so the product is exact (a replication here costs Icarus an operation per bit)
    /* verilator lint_off WIDTHEXPAND */
    prod_d = acc_i * $signed({1'b0, m0_i});
    /* verilator lint_on WIDTHEXPAND */
  end

  // ---------------------------------------------------------------- stage 2: round_shift
  reg signed [P_BITS-1:0] rnd_q, rnd_d;
  reg signed [P_BITS-1:0] q_d;
  // Only bit 0 of v >>> (s-1) is the half bit; the other bits are a by-product of the shift.
  /* verilator lint_off UNUSEDSIGNAL */
  reg signed [P_BITS-1:0] hs_d;
  /* verilator lint_on UNUSEDSIGNAL */
  reg        [P_BITS-1:0] sticky_mask_d;
  reg                     half_d, sticky_d, up_d;
  reg signed [Y_BITS-1:0] zy2_q, lo2_q, hi2_q;

  always @* begin
    q_d           = prod_q >>> sh1_q;
    half_d        = 1'b0;
    sticky_d      = 1'b0;
    up_d          = 1'b0;
    sticky_mask_d = {P_BITS{1'b0}};
    hs_d          = {P_BITS{1'b0}};
    if (sh1_q != {SHIFT_BITS{1'b0}}) begin
      // v[s-1]: the arithmetic shift sign-extends, so s-1 >= P_BITS reads the sign bit.
      hs_d          = prod_q >>> (sh1_q - 1'b1);
      half_d        = hs_d[0];
      // bits v[s-2:0]; a shift by >= P_BITS yields 0, so the mask covers every bit then.
      sticky_mask_d = ~({P_BITS{1'b1}} << (sh1_q - 1'b1));
      sticky_d      = |(prod_q & sticky_mask_d);
      case (mode1_q)
        MODE_HALF_EVEN: up_d = half_d & (sticky_d | q_d[0]);
        MODE_HALF_UP:   up_d = half_d;
        MODE_HALF_AWAY: up_d = half_d & (sticky_d | ~prod_q[P_BITS-1]);
        default:        up_d = 1'b0;  // floor
      endcase
    end
    rnd_d = q_d + $signed({{(P_BITS - 1){1'b0}}, up_d});
  end

  // ---------------------------------------------------------------- stage 3: z_y + clamp
  reg signed [Y_BITS-1:0] y_q, y_d;
  reg signed [S_BITS-1:0] sum_d, lo_x_d, hi_x_d;

  always @* begin
    // signed context of S_BITS: every operand is sign-extended (IEEE 1364 5.5)
    /* verilator lint_off WIDTHEXPAND */
    sum_d  = rnd_q + zy2_q;
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

  // ---------------------------------------------------------------- registers
  // One valid bit per stage; vld_q[i] qualifies (and enables) stage i+1's data registers.
  reg [LATENCY-1:0] vld_q;

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
