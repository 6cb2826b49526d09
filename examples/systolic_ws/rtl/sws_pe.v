// sws_pe: one processing element of the weight-stationary systolic array (sws_array).
//
// The PE holds two weights (bank 0 and bank 1: one is used by the block flowing through the
// array while the other is loaded for the next block). Each cycle it takes an activation from
// its left neighbour and a partial sum from the PE above and registers
//
//   a_q     <= a_i                       (passed right, with a_en_i and a_bank_i)
//   psum_q  <= psum_i + (a_en_i ? a_i * w[a_bank_i] : 0)       (passed down)
//
// so a column adds one product per PE row. The sum is exact: a_i is signed A_BITS + 1 bits (the
// array sign- or zero-extends the A_BITS activation), w signed W_BITS, the product
// A_BITS + W_BITS + 1 bits, and PS_BITS leaves room for the column's ROWS products
// (sws_array: PS_BITS = A_BITS + W_BITS + 2 + clog2(ROWS)).
//
// Weight load: w_we_i writes w_i into bank w_bank_i at the rising edge. A product sampled at the
// same edge still uses the old weight (nonblocking update), which is what the loader's hazard
// rule relies on (sws_ctrl: a bank is rewritten only COLS cycles after its last activation).
//
// Control (a_en_q) is reset; the datapath (a_q, psum_q, weights) is not. A disabled PE passes
// psum_i unchanged and never multiplies an unwritten weight, so no X reaches a used sum.
`timescale 1ns / 1ps
`default_nettype none

module sws_pe #(
  parameter integer A_BITS  = 8,  // activation width before extension, 2..8
  parameter integer W_BITS  = 8,  // weight width (signed), 2..8
  parameter integer PS_BITS = 20  // partial-sum width (signed), > A_BITS + W_BITS + 1
) (
  input  wire                      clk_i,
  input  wire                      rst_ni,    // active-low synchronous reset (a_en_q only)
  input  wire signed [A_BITS:0]    a_i,       // activation, already extended to A_BITS + 1 bits
  input  wire                      a_en_i,    // a_i is a real activation of this PE row
  input  wire                      a_bank_i,  // weight bank the activation's block uses
  input  wire signed [PS_BITS-1:0] psum_i,
  input  wire                      w_we_i,    // write w_i into bank w_bank_i
  input  wire                      w_bank_i,
  input  wire signed [W_BITS-1:0]  w_i,
  output wire signed [A_BITS:0]    a_o,
  output wire                      a_en_o,
  output wire                      a_bank_o,
  output wire signed [PS_BITS-1:0] psum_o
);

  // Exact product width: (A_BITS + 1) x W_BITS signed.
  localparam integer PROD_BITS = A_BITS + W_BITS + 1;

  initial begin
    if (A_BITS < 2 || A_BITS > 8 || W_BITS < 2 || W_BITS > 8) begin
      $fatal(1, "%m: A_BITS=%0d and W_BITS=%0d must be in 2..8", A_BITS, W_BITS);
    end
    if (PS_BITS <= PROD_BITS || PS_BITS > 64) begin
      $fatal(1, "%m: PS_BITS=%0d must be in %0d..64", PS_BITS, PROD_BITS + 1);
    end
  end

  reg signed [W_BITS-1:0]    w0_q, w1_q;
  reg signed [A_BITS:0]      a_q;
  reg                        a_en_q, a_bank_q;
  reg signed [PS_BITS-1:0]   psum_q, psum_d;
  reg signed [W_BITS-1:0]    w_d;
  reg signed [PROD_BITS-1:0] prod_d;

  always @* begin
    w_d    = a_bank_i ? w1_q : w0_q;
    prod_d = $signed({{W_BITS{a_i[A_BITS]}}, a_i}) * $signed({{(A_BITS + 1){w_d[W_BITS-1]}}, w_d});
    psum_d = psum_i;
    if (a_en_i) begin
      psum_d = psum_i + $signed({{(PS_BITS - PROD_BITS){prod_d[PROD_BITS-1]}}, prod_d});
    end
  end

  always @(posedge clk_i) begin
    if (w_we_i && !w_bank_i) begin
      w0_q <= w_i;
    end
    if (w_we_i && w_bank_i) begin
      w1_q <= w_i;
    end
    a_q      <= a_i;
    a_bank_q <= a_bank_i;
    psum_q   <= psum_d;
  end

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      a_en_q <= 1'b0;
    end else begin
      a_en_q <= a_en_i;
    end
  end

  assign a_o      = a_q;
  assign a_en_o   = a_en_q;
  assign a_bank_o = a_bank_q;
  assign psum_o   = psum_q;

endmodule

`default_nettype wire
