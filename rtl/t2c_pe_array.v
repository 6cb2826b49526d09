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

  genvar gr, gc;
  generate
    for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_row
      for (gc = 0; gc < COLS; gc = gc + 1) begin : g_col
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
          .act_i      (act_i[gr*M*A_BITS +: M*A_BITS]),
          .val_i      (val_i[gc*N*W_BITS +: N*W_BITS]),
          .idx_i      (idx_i[gc*N*IDX_BITS +: N*IDX_BITS]),
          .bias_i     (bias_i[gc*ACC_BITS +: ACC_BITS]),
          .acc_o      (acc_o[(gr*COLS + gc)*ACC_BITS +: ACC_BITS])
        );
      end
    end
  endgenerate

endmodule

`default_nettype wire
