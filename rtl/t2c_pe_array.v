// t2c_pe_array: ROWS x COLS N:M PEs, output-stationary with broadcast operands, and the drain
// buffer that the accelerator reads one row per cycle.
//
// Every cycle row r receives one group of M activations (output row p0 + r) and column c one
// compressed weight group (N values, N indices: output channel c0 + c). PE (r, c) computes,
// over the G groups of a dot product (clear_i on the first),
//
//   acc[r][c] = wrap_ACC_BITS( bias[c] + sum_g sum_j val[c][g][j] * act[r][g][idx[c][g][j]] )
//
// exactly like t2c_nm_pe (clear_i loads bias_i, valid_i adds the products, neither holds;
// an index >= M selects a zero operand (with ZP: after the zero point, so it adds no
// product); activations sign- or zero-extended per a_signed_i). With ZP = 1 the
// operands are taken after their zero points (SPEC section 7, activation x activation matmul):
//
//   act' = ext(act) - ext(za_i),  val' = ext(val) - ext(zw_i)   (one bit wider, signed)
//
// (ext: per a_signed_i for activations; sign-extension, or zero-extension when w_unsigned_i,
// for weights); ZP = 0 builds no zero-point logic (za_i, zw_i, w_unsigned_i are ignored: the
// accelerator's MAC layers fold z_x into bias_eff and have symmetric signed weights, which is
// za = zw = 0). The subtraction is at the array edge, once per row lane and column value. After the G-th
// valid cycle the accumulators hold the ROWS x COLS block; capture_i copies them into the drain
// buffer (at the same edge a new block may clear the accumulators), and drow_acc_o shows row
// drow_i of the drain buffer (combinational, COLS accumulators). Broadcast (not systolic) keeps
// the block latency at exactly G + 1 cycles with no skew, which is what the cycle model counts.
//
// Packing: act_i is lane-major, activation lane i of row r at [(i*ROWS + r)*A_BITS +: A_BITS];
// wgt_i column c at [c*WGT_W +: WGT_W] with WGT_W = N*W_BITS + N*IDX_BITS (values lane j at
// [j*W_BITS], indices lane j at [N*W_BITS + j*IDX_BITS]); bias_i column c at [c*ACC_BITS];
// drow_acc_o column c at [c*ACC_BITS +: ACC_BITS].
//
// Two implementations of the same function (PACKED), bit-identical at the ports:
//
// * PACKED = 0: ROWS*COLS t2c_nm_pe instances (one multiplier set per PE). The structural form,
//   and the fast one for a compiled simulator (Verilator).
// * PACKED = 1: one datapath per column in which the ROWS accumulators are lanes of S bits of one
//   wide word (S >= max(ACC_BITS, A_BITS + W_BITS + clog2(N)) + 2). The activations of one
//   lane i of all rows are spread into such a word U_i (each field moved from stride A_BITS to
//   stride S, a fixed permutation of wires; signed activations are offset by 2^(A_BITS-1) and
//   the offset is subtracted per lane), so one multiply w * U_i forms the column's ROWS
//   products at once. Per column and cycle
//       P = ((clear ? bias*ONES : P) + sum_j w[j] * U[idx[j]] + 2^E * ONES) & LANE_MASK
//   where every lane of the sum is in [0, 2^S) (2^E > |sum of one cycle's products|), so no
//   lane borrows from its neighbour and masking each lane to ACC_BITS is the wrap. This is the
//   form for an event-driven simulator: Icarus evaluates a few wide vector operations per
//   column instead of ROWS*N small multiplies in ROWS*COLS processes (measured on the 8x8 array:
//   docs/rtl.md). Synthesis maps it onto the same multipliers' worth of logic with wider adders.
//
// Simulation cost notes (Icarus): no net is driven by several slice drivers (vvp rebuilds such a
// net bit by bit on each slice update); wide constants are nets, not literals (vvp rebuilds a
// wide literal from 32-bit immediates on every use).
`timescale 1ns / 1ps
`default_nettype none

module t2c_pe_array #(
  parameter integer ROWS = 4,      // PE rows (output rows in parallel), 1..64
  parameter integer COLS = 4,      // PE columns (output channels in parallel), 1..64
  parameter integer A_BITS = 8,    // activation width
  parameter integer W_BITS = 8,    // weight width (signed)
  parameter integer ACC_BITS = 32, // accumulator width (wraps)
  parameter integer N = 2,         // kept weights per group
  parameter integer M = 4,         // group size
  parameter integer IDX_BITS = 2,  // (M > 1) ? $clog2(M) : 1
  parameter integer PACKED = 0,    // 0: t2c_nm_pe instances, 1: lane-packed columns (see above)
  parameter integer ZP = 0         // 1: operand zero points (za_i, zw_i, w_unsigned_i)
) (
  input  wire                                        clk_i,
  input  wire                                        rst_ni,
  input  wire                                        clear_i,
  input  wire                                        valid_i,
  input  wire                                        a_signed_i,
  // zero points (ZP = 1; 0, 0, 0 is the MAC-layer setting)
  input  wire [A_BITS-1:0]                           za_i,         // activation zero point
  input  wire [W_BITS-1:0]                           zw_i,         // weight-operand zero point
  input  wire                                        w_unsigned_i, // weight operand unsigned
  input  wire [M*ROWS*A_BITS-1:0]                    act_i,
  input  wire [COLS*(N*W_BITS+N*IDX_BITS)-1:0]       wgt_i,
  input  wire [COLS*ACC_BITS-1:0]                    bias_i,
  input  wire                                        capture_i,
  input  wire [((ROWS > 1) ? $clog2(ROWS) : 1)-1:0]  drow_i,
  output wire [COLS*ACC_BITS-1:0]                    drow_acc_o
);

  localparam integer WGT_W = N * W_BITS + N * IDX_BITS;
  localparam integer VAL_W = N * W_BITS;
  localparam integer AZ = A_BITS + ZP;  // activation operand width (after its zero point)
  localparam integer WZ = W_BITS + ZP;  // weight operand width (after its zero point)

  initial begin
    if (ROWS < 1 || COLS < 1 || ROWS > 64 || COLS > 64) begin
      $fatal(1, "%m: ROWS=%0d and COLS=%0d must be in 1..64", ROWS, COLS);
    end
    if (PACKED != 0 && PACKED != 1) begin
      $fatal(1, "%m: PACKED=%0d must be 0 or 1", PACKED);
    end
    if (ZP != 0 && ZP != 1) begin
      $fatal(1, "%m: ZP=%0d must be 0 or 1", ZP);
    end
    if (ZP == 1 && (A_BITS > 15 || W_BITS > 15 || ACC_BITS < A_BITS + W_BITS + 3)) begin
      $fatal(1, "%m: ZP=1 needs A_BITS, W_BITS <= 15 and ACC_BITS >= A_BITS+W_BITS+3 (got %0d, %0d, %0d)",
             A_BITS, W_BITS, ACC_BITS);
    end
  end

  // Zero points as signed values one bit wider than the operands (0 without ZP; some of these
  // are then unused, as are the zero-point inputs).
  wire                   zp_on = (ZP == 1);
  /* verilator lint_off UNUSEDSIGNAL */
  wire                   wu    = zp_on & w_unsigned_i;
  wire signed [A_BITS:0] za_x  = zp_on ? $signed({a_signed_i & za_i[A_BITS-1], za_i}) : {(A_BITS+1){1'b0}};
  wire signed [W_BITS:0] zw_x  = zp_on ? $signed({~w_unsigned_i & zw_i[W_BITS-1], zw_i}) : {(W_BITS+1){1'b0}};
  /* verilator lint_on UNUSEDSIGNAL */

  genvar gr, gc, gi, gv;
  generate
    if (PACKED == 0) begin : g_pe
      // ------------------------------------------------------------------ PE instances
      wire [M*AZ-1:0]       act_r [0:ROWS-1];
      wire [N*WZ-1:0]       val_c [0:COLS-1];
      reg  [ROWS*COLS*ACC_BITS-1:0] acc_cat;
      reg  [ROWS*COLS*ACC_BITS-1:0] dbuf_q;

      // Weight operands after the zero point: value j of column c (ZP = 0: the value itself).
      wire signed [WZ-1:0] wv_m [0:COLS*N-1];
      for (gv = 0; gv < COLS * N; gv = gv + 1) begin : g_wv
        localparam integer VB = (gv / N) * WGT_W + (gv % N) * W_BITS;
        if (ZP == 1) begin : g_z
          assign wv_m[gv] = $signed({~wu & wgt_i[VB + W_BITS - 1], wgt_i[VB +: W_BITS]}) - zw_x;
        end else begin : g_n
          assign wv_m[gv] = $signed(wgt_i[VB +: W_BITS]);
        end
      end

      for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_row_in
        for (gi = 0; gi < M; gi = gi + 1) begin : g_lane
          localparam integer AB = (gi*ROWS + gr) * A_BITS;
          if (ZP == 1) begin : g_z
            // a - za, one bit wider (the PEs then take signed AZ-bit activations)
            assign act_r[gr][gi*AZ +: AZ] = $signed({a_signed_i & act_i[AB + A_BITS - 1],
                                                     act_i[AB +: A_BITS]}) - za_x;
          end else begin : g_n
            assign act_r[gr][gi*AZ +: AZ] = act_i[AB +: A_BITS];
          end
        end
      end
      for (gc = 0; gc < COLS; gc = gc + 1) begin : g_col_in
        for (gi = 0; gi < N; gi = gi + 1) begin : g_val
          assign val_c[gc][gi*WZ +: WZ] = wv_m[gc*N + gi];
        end
      end
      for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_row
        for (gc = 0; gc < COLS; gc = gc + 1) begin : g_col
          wire [ACC_BITS-1:0] acc_pe;

          t2c_nm_pe #(
            .A_BITS   (AZ),
            .W_BITS   (WZ),
            .ACC_BITS (ACC_BITS),
            .N        (N),
            .M        (M),
            .IDX_BITS (IDX_BITS)
          ) u_pe (
            .clk_i      (clk_i),
            .rst_ni     (rst_ni),
            .clear_i    (clear_i),
            .valid_i    (valid_i),
            .a_signed_i (a_signed_i | zp_on),
            .act_i      (act_r[gr]),
            .val_i      (val_c[gc]),
            .idx_i      (wgt_i[gc*WGT_W + VAL_W +: N*IDX_BITS]),
            .bias_i     (bias_i[gc*ACC_BITS +: ACC_BITS]),
            .acc_o      (acc_pe)
          );

          always @* begin
            acc_cat[(gr*COLS + gc)*ACC_BITS +: ACC_BITS] = acc_pe;
          end
        end
      end

      always @(posedge clk_i) begin
        if (capture_i) begin
          dbuf_q <= acc_cat;
        end
      end

      assign drow_acc_o = dbuf_q[drow_i*COLS*ACC_BITS +: COLS*ACC_BITS];

    end else begin : g_packed
      // ------------------------------------------------------------------ lane-packed columns
      localparam integer CLN  = (N > 1) ? $clog2(N) : 0;
      localparam integer EP   = A_BITS + W_BITS + CLN + ZP;      // |products of one cycle| < 2^EP
      localparam integer E    = (ACC_BITS > EP) ? ACC_BITS : EP; // lane offset 2^E
      localparam integer S    = E + 2;                           // lane width
      localparam integer RS   = ROWS * S;                        // one column word
      localparam integer F    = M * ROWS;                        // activation fields per word
      localparam integer FS   = F * S;
      localparam integer L    = (F > 1) ? $clog2(F) : 1;         // spread steps
      localparam integer D    = S - A_BITS;                      // field move per index step
      localparam integer ACTW = M * ROWS * A_BITS;

      // Spread step b moves every field whose index has bit b set by 2^b * D bits; before step b
      // (steps run from the top bit down) field f sits at hi*S + lo*A_BITS with hi = f rounded
      // down to a multiple of 2^(b+1) and lo = f mod 2^(b+1). The moved and kept fields of a
      // group never overlap (A_BITS <= S), so each step is (x & ~MV) | ((x & MV) << 2^b*D).
      /* verilator lint_off UNUSEDSIGNAL */ // pos is an integer; fields sit below FS
      function [FS-1:0] move_mask;
        input integer b;
        integer f, pos;
        begin
          move_mask = {FS{1'b0}};
          if (b < L) begin
            for (f = 0; f < F; f = f + 1) begin
              if (((f >> b) & 1) == 1) begin
                pos = ((f >> (b + 1)) << (b + 1)) * S + (f % (1 << (b + 1))) * A_BITS;
                move_mask[pos +: A_BITS] = {A_BITS{1'b1}};
              end
            end
          end
        end
      endfunction
      /* verilator lint_on UNUSEDSIGNAL */

      // v in each of the ROWS lanes of a column word
      function [RS-1:0] lanes;
        input [S-1:0] v;
        integer r;
        begin
          lanes = {RS{1'b0}};
          for (r = 0; r < ROWS; r = r + 1) begin
            lanes[r*S +: S] = v;
          end
        end
      endfunction

      // the sign bit of every field of width fw
      function [ACTW-1:0] sign_bits;
        input integer fw;
        integer f;
        begin
          sign_bits = {ACTW{1'b0}};
          for (f = 0; f < F; f = f + 1) begin
            sign_bits[f*fw + fw - 1] = 1'b1;
          end
        end
      endfunction

      initial begin
        if (FS > 65536 || L > 14) begin
          $fatal(1, "%m: PACKED=1 needs M*ROWS*S <= 65536 bits (M=%0d, ROWS=%0d, S=%0d); use PACKED=0",
                 M, ROWS, S);
        end
      end

      // Wide constants as nets (see the header).
      wire [FS-1:0] mv0 = move_mask(0),  mv1 = move_mask(1),  mv2 = move_mask(2),
                    mv3 = move_mask(3),  mv4 = move_mask(4),  mv5 = move_mask(5),
                    mv6 = move_mask(6),  mv7 = move_mask(7),  mv8 = move_mask(8),
                    mv9 = move_mask(9),  mv10 = move_mask(10), mv11 = move_mask(11),
                    mv12 = move_mask(12), mv13 = move_mask(13);
      wire [FS-1:0] kp0 = ~mv0, kp1 = ~mv1, kp2 = ~mv2, kp3 = ~mv3, kp4 = ~mv4, kp5 = ~mv5,
                    kp6 = ~mv6, kp7 = ~mv7, kp8 = ~mv8, kp9 = ~mv9, kp10 = ~mv10,
                    kp11 = ~mv11, kp12 = ~mv12, kp13 = ~mv13;
      wire [RS-1:0] ones   = lanes({{(S-1){1'b0}}, 1'b1});
      wire [RS-1:0] offv   = lanes({{(S-A_BITS){1'b0}}, 1'b1, {(A_BITS-1){1'b0}}});
      wire signed [RS-1:0] kv = lanes({1'b0, 1'b1, {E{1'b0}}});
      wire [RS-1:0] lmask  = lanes({{(S-ACC_BITS){1'b0}}, {ACC_BITS{1'b1}}});
      wire [ACTW-1:0] sgn  = sign_bits(A_BITS);

      // U_i: lane i of every row, one exact (two's complement) value per S-bit lane; the
      // entries for indices M .. 2^IDX_BITS-1 (M not a power of two) are 0: an index >= M
      // selects 0
      reg  [FS-1:0]         sp;
      reg  [RS-1:0]         offz;
      reg  [ACTW-1:0]       sflip, skeep;
      reg  signed [RS-1:0]  zl;
      reg  signed [RS-1:0]  u_m [0:(1 << IDX_BITS)-1];
      integer               i;

      // what every lane subtracts: the sign offset (signed activations) plus the zero point
      // (a process of its own: it wakes only when a_signed_i or za_i change). zl is the zero
      // point in every lane as one signed integer (a signed product of its own: in a mixed
      // expression za_x would be zero-extended).
      // The sign bits to flip (signed activations) and their complement, per run: the flip is
      // (act & skeep) | (~act & sflip) (vvp evaluates XOR bit by bit, AND/OR/NOT word by word).
      always @* begin
        zl    = za_x * $signed(ones);
        offz  = (a_signed_i ? offv : {RS{1'b0}}) + zl;
        sflip = a_signed_i ? sgn : {ACTW{1'b0}};
        skeep = ~sflip;
      end

      always @* begin
        // offset signed activations by 2^(A_BITS-1) (flip the sign bit): every field >= 0
        sp  = {{(FS - ACTW){1'b0}}, (act_i & skeep) | (~act_i & sflip)};
        if (L > 13) sp = (sp & kp13) | ((sp & mv13) << (8192 * D));
        if (L > 12) sp = (sp & kp12) | ((sp & mv12) << (4096 * D));
        if (L > 11) sp = (sp & kp11) | ((sp & mv11) << (2048 * D));
        if (L > 10) sp = (sp & kp10) | ((sp & mv10) << (1024 * D));
        if (L > 9)  sp = (sp & kp9)  | ((sp & mv9)  << (512 * D));
        if (L > 8)  sp = (sp & kp8)  | ((sp & mv8)  << (256 * D));
        if (L > 7)  sp = (sp & kp7)  | ((sp & mv7)  << (128 * D));
        if (L > 6)  sp = (sp & kp6)  | ((sp & mv6)  << (64 * D));
        if (L > 5)  sp = (sp & kp5)  | ((sp & mv5)  << (32 * D));
        if (L > 4)  sp = (sp & kp4)  | ((sp & mv4)  << (16 * D));
        if (L > 3)  sp = (sp & kp3)  | ((sp & mv3)  << (8 * D));
        if (L > 2)  sp = (sp & kp2)  | ((sp & mv2)  << (4 * D));
        if (L > 1)  sp = (sp & kp1)  | ((sp & mv1)  << (2 * D));
        if (F > 1)  sp = (sp & kp0)  | ((sp & mv0)  << D);
        // (unrolled up to 8 lanes: constant part-selects; Icarus runs a loop ~3x slower; the
        // statements past M are dead code behind constant-false guards)
        /* verilator lint_off SELRANGE */
        if (M > 0) u_m[0] = sp[0*RS +: RS] - offz;
        if (M > 1) u_m[1] = sp[1*RS +: RS] - offz;
        if (M > 2) u_m[2] = sp[2*RS +: RS] - offz;
        if (M > 3) u_m[3] = sp[3*RS +: RS] - offz;
        if (M > 4) u_m[4] = sp[4*RS +: RS] - offz;
        if (M > 5) u_m[5] = sp[5*RS +: RS] - offz;
        if (M > 6) u_m[6] = sp[6*RS +: RS] - offz;
        if (M > 7) u_m[7] = sp[7*RS +: RS] - offz;
        for (i = 8; i < (1 << IDX_BITS); i = i + 1) begin
          u_m[i] = (i < M) ? sp[i*RS +: RS] - offz : {RS{1'b0}};
        end
        /* verilator lint_on SELRANGE */
        if (M < 8 && M != (1 << IDX_BITS)) begin
          for (i = M; i < (1 << IDX_BITS); i = i + 1) begin
            u_m[i] = {RS{1'b0}};
          end
        end
      end

      // rst_ni is part of the common port list; the accumulators are datapath and are not reset.
      wire unused_rst = rst_ni;

      reg  signed [RS-1:0] p_m [0:COLS-1];  // accumulators: column c, row r in lane r (low ACC_BITS)
      reg  [COLS*RS-1:0] dbuf_q;      // drain buffer: column c at [c*RS +: RS]

      // Per column: P <= ((clear ? bias : P) + sum_j w[j] * U[idx[j]] + 2^E) & LANE_MASK when
      // valid; P <= bias when only clear. The first 8 kept values are terms of one expression
      // with constant part-selects (those past N are constant-false terms the compiler drops;
      // a temporary per product costs Icarus ~20 % more); more go through a loop. In the signed
      // context of RS bits w is sign-extended (IEEE 1364 5.5; a replication here costs Icarus
      // an operation per bit) and each product is exact modulo 2^RS.
      // x, w and dnext are temporaries local to their process (assigned before every use).
      /* verilator lint_off BLKSEQ */
      /* verilator lint_off WIDTHEXPAND */
      /* verilator lint_off SELRANGE */
      // value j of this column after its zero point (ZP = 0: the value itself), read from wgt_i
      // in the column's own process (per-value nets cost Icarus several net events each)
`define T2C_WV(j) ((ZP == 1) ? $signed({~wu & wgt_i[VB + (j)*W_BITS + W_BITS - 1], wgt_i[VB + (j)*W_BITS +: W_BITS]}) - zw_x : $signed(wgt_i[VB + (j)*W_BITS +: W_BITS]))
      for (gc = 0; gc < COLS; gc = gc + 1) begin : g_col
        localparam integer VB = gc * WGT_W;          // this column's values
        localparam integer IB = gc * WGT_W + VAL_W;  // this column's indices
        wire signed [RS-1:0] bias_l = {{(RS-ACC_BITS){1'b0}}, bias_i[gc*ACC_BITS +: ACC_BITS]} * ones;

        if (N <= 8) begin : g_n8
          always @(posedge clk_i) begin
            if (valid_i) begin
              p_m[gc] <= $signed((clear_i ? bias_l : p_m[gc])
                + ((N > 0) ? `T2C_WV(0) * u_m[wgt_i[IB + 0*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + ((N > 1) ? `T2C_WV(1) * u_m[wgt_i[IB + 1*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + ((N > 2) ? `T2C_WV(2) * u_m[wgt_i[IB + 2*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + ((N > 3) ? `T2C_WV(3) * u_m[wgt_i[IB + 3*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + ((N > 4) ? `T2C_WV(4) * u_m[wgt_i[IB + 4*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + ((N > 5) ? `T2C_WV(5) * u_m[wgt_i[IB + 5*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + ((N > 6) ? `T2C_WV(6) * u_m[wgt_i[IB + 6*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + ((N > 7) ? `T2C_WV(7) * u_m[wgt_i[IB + 7*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                + kv) & lmask;  // the sum is self-determined and all signed
            end else if (clear_i) begin
              p_m[gc] <= bias_l;
            end
          end
        end else begin : g_nbig
          reg  signed [RS-1:0]     x;
          reg  signed [WZ-1:0]     w;
          integer                  j;

          always @(posedge clk_i) begin
            if (valid_i) begin
              x = (clear_i ? bias_l : p_m[gc])
                  + ((N > 0) ? `T2C_WV(0) * u_m[wgt_i[IB + 0*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                  + ((N > 1) ? `T2C_WV(1) * u_m[wgt_i[IB + 1*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                  + ((N > 2) ? `T2C_WV(2) * u_m[wgt_i[IB + 2*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                  + ((N > 3) ? `T2C_WV(3) * u_m[wgt_i[IB + 3*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                  + ((N > 4) ? `T2C_WV(4) * u_m[wgt_i[IB + 4*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                  + ((N > 5) ? `T2C_WV(5) * u_m[wgt_i[IB + 5*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                  + ((N > 6) ? `T2C_WV(6) * u_m[wgt_i[IB + 6*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}))
                  + ((N > 7) ? `T2C_WV(7) * u_m[wgt_i[IB + 7*IDX_BITS +: IDX_BITS]] : $signed({RS{1'b0}}));
              for (j = 8; j < N; j = j + 1) begin
                w = (ZP == 1) ? $signed({~wu & wgt_i[VB + j*W_BITS + W_BITS - 1], wgt_i[VB + j*W_BITS +: W_BITS]}) - zw_x
                              : $signed(wgt_i[VB + j*W_BITS +: W_BITS]);
                x = x + w * u_m[wgt_i[IB + j*IDX_BITS +: IDX_BITS]];
              end
              p_m[gc] <= (x + kv) & lmask;
            end else if (clear_i) begin
              p_m[gc] <= bias_l;
            end
          end
        end
      end
`undef T2C_WV
      /* verilator lint_on SELRANGE */
      /* verilator lint_on WIDTHEXPAND */

      reg  [COLS*RS-1:0] dnext;
      integer            c;

      always @(posedge clk_i) begin
        if (capture_i) begin
          for (c = 0; c < COLS; c = c + 1) begin
            dnext[c*RS +: RS] = p_m[c];
          end
          dbuf_q <= dnext;
        end
      end
      /* verilator lint_on BLKSEQ */

      reg  [COLS*ACC_BITS-1:0] drow;
      integer                  k;

      always @* begin
        for (k = 0; k < COLS; k = k + 1) begin
          drow[k*ACC_BITS +: ACC_BITS] = dbuf_q[k*RS + drow_i*S +: ACC_BITS];
        end
      end

      assign drow_acc_o = drow;
    end
  endgenerate

endmodule

`default_nettype wire
