// t2c_pe_array: ROWS x COLS N:M PEs, output-stationary with broadcast operands.
//
// Every cycle row r receives one group of M activations (act_i lane r: output row p0 + r) and
// column c receives one compressed weight group (N values, N indices: output channel c0 + c).
// PE (r, c) computes, over the G groups of a dot product (clear_i on the first),
//
//   acc[r][c] = wrap_ACC_BITS( bias[c] + sum_g sum_j val[c][g][j] * act[r][g][idx[c][g][j]] )
//
// so after the G-th valid cycle acc_o holds the ROWS x COLS output block (one cycle after the
// last group is presented, like t2c_nm_pe). Broadcast (not systolic) keeps the block latency at
// exactly G + 1 cycles with no skew, which is what the cycle model counts.
//
// Packing: act_i row r at [r*M*A_BITS +: M*A_BITS]; val_i column c at [c*N*W_BITS +: N*W_BITS];
// idx_i column c at [c*N*IDX_BITS +: N*IDX_BITS]; bias_i column c at [c*ACC_BITS +: ACC_BITS];
// acc_o PE (r, c) at [(r*COLS + c)*ACC_BITS +: ACC_BITS].
//
// Simulation cost (Icarus): every PE port connects to one word of a per-row / per-column net
// array, not to a slice of the wide input (vvp would re-send the whole strength-resolved wide
// vector to each of the ROWS*COLS slice readers on every change), and the PE accumulators are
// gathered into acc_o by one small combinational block per PE writing its slice of a variable
// (a wide net driven by ROWS*COLS port slices is rebuilt bit by bit on each PE update).
`timescale 1ns / 1ps
`default_nettype none

module t2c_pe_array #(
  parameter integer ROWS = 4,      // PE rows (output rows in parallel), >= 1
  parameter integer COLS = 4,      // PE columns (output channels in parallel), >= 1
  parameter integer A_BITS = 8,    // activation width
  parameter integer W_BITS = 8,    // weight width (signed)
  parameter integer ACC_BITS = 32, // accumulator width (wraps)
  parameter integer N = 2,         // kept weights per group
  parameter integer M = 4,         // group size
  parameter integer IDX_BITS = 2   // (M > 1) ? $clog2(M) : 1
) (
  input  wire                          clk_i,
  input  wire                          rst_ni,
  input  wire                          clear_i,
  input  wire                          valid_i,
  input  wire                          a_signed_i,
  input  wire [ROWS*M*A_BITS-1:0]      act_i,
  input  wire [COLS*N*W_BITS-1:0]      val_i,
  input  wire [COLS*N*IDX_BITS-1:0]    idx_i,
  input  wire [COLS*ACC_BITS-1:0]      bias_i,
  output wire [ROWS*COLS*ACC_BITS-1:0] acc_o
);

  initial begin
    if (ROWS < 1 || COLS < 1 || ROWS > 64 || COLS > 64) begin
      $fatal(1, "%m: ROWS=%0d and COLS=%0d must be in 1..64", ROWS, COLS);
    end
  end

  // per-row / per-column operands (one reader of each wide input slice)
  wire [M*A_BITS-1:0]   act_r  [0:ROWS-1];
  wire [N*W_BITS-1:0]   val_c  [0:COLS-1];
  wire [N*IDX_BITS-1:0] idx_c  [0:COLS-1];
  wire [ACC_BITS-1:0]   bias_c [0:COLS-1];
  // all accumulators (combinational copy of the PEs' registers)
  reg  [ROWS*COLS*ACC_BITS-1:0] acc_cat;

  genvar gr, gc;
  generate
    for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_row_in
      assign act_r[gr] = act_i[gr*M*A_BITS +: M*A_BITS];
    end
    for (gc = 0; gc < COLS; gc = gc + 1) begin : g_col_in
      assign val_c[gc]  = val_i[gc*N*W_BITS +: N*W_BITS];
      assign idx_c[gc]  = idx_i[gc*N*IDX_BITS +: N*IDX_BITS];
      assign bias_c[gc] = bias_i[gc*ACC_BITS +: ACC_BITS];
    end
    for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_row
      for (gc = 0; gc < COLS; gc = gc + 1) begin : g_col
        wire [ACC_BITS-1:0] acc_pe;

        t2c_nm_pe #(
          .A_BITS   (A_BITS),
          .W_BITS   (W_BITS),
          .ACC_BITS (ACC_BITS),
          .N        (N),
          .M        (M),
          .IDX_BITS (IDX_BITS)
        ) u_pe (
          .clk_i      (clk_i),
          .rst_ni     (rst_ni),
          .clear_i    (clear_i),
          .valid_i    (valid_i),
          .a_signed_i (a_signed_i),
          .act_i      (act_r[gr]),
          .val_i      (val_c[gc]),
          .idx_i      (idx_c[gc]),
          .bias_i     (bias_c[gc]),
          .acc_o      (acc_pe)
        );

        always @* begin
          acc_cat[(gr*COLS + gc)*ACC_BITS +: ACC_BITS] = acc_pe;
        end
      end
    end
  endgenerate

  assign acc_o = acc_cat;

endmodule

`default_nettype wire
