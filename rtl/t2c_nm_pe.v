// t2c_nm_pe: one N:M structured-sparse processing element (SPEC section 4); N = M is dense.
//
// Each cycle the PE takes one group of M activations a[0..M-1] and the group's N kept weights
// w[j] with their indices idx[j] in [0, M), selects a[idx[j]] with an M:1 mux per kept value
// and accumulates
//
//   acc_q <= wrap_ACC_BITS( (clear_i ? bias_i : acc_q) + (valid_i ? sum_j w[j] * a[idx[j]] : 0) )
//
// (two's complement, mod 2^ACC_BITS). With neither clear_i nor valid_i the accumulator holds.
// An index >= M (only possible when M is not a power of two) selects 0.
//
// Widths: an activation is sign-extended (a_signed_i = 1) or zero-extended (a_signed_i = 0) to
// A_BITS + 1 signed bits, a weight is signed W_BITS; each product is formed in the ACC_BITS
// signed context of the sum (both operands sign-extended to ACC_BITS >= PROD_BITS =
// A_BITS + W_BITS + 1 first, so it is exact), and the sum wraps like the accumulator (wrapping
// is order-independent, SPEC section 2).
//
// Simulation cost (Icarus): the datapath is behavioural code in two combinational blocks, not
// a net of continuous assignments. vvp evaluates replications and concatenations on nets bit by
// bit, which made the 8x8 array run at ~70 cycles/s; the mux/multiply block here only wakes when
// the operands change (once per cycle), the accumulate block when acc_q/clear/valid change.
//
// Latency: acc_o is the register, so a group presented at a rising edge is in acc_o after it.
// The accumulator is datapath (not reset): start every dot product with clear_i.
`timescale 1ns / 1ps
`default_nettype none

module t2c_nm_pe #(
  parameter integer A_BITS = 8,    // activation width, 2..16
  parameter integer W_BITS = 8,    // weight width (signed), 2..16
  parameter integer ACC_BITS = 32, // accumulator width (wraps), A_BITS + W_BITS + 1 .. 64
  parameter integer N = 2,         // kept weights per group, 1..M
  parameter integer M = 4,         // group size, 1..256
  parameter integer IDX_BITS = 2   // index width: must equal (M > 1) ? $clog2(M) : 1
) (
  input  wire                       clk_i,
  input  wire                       rst_ni,     // unused: the PE has no control state
  input  wire                       clear_i,    // start a new dot product: acc := bias_i (+ products if valid_i)
  input  wire                       valid_i,    // accumulate this cycle's group
  input  wire                       a_signed_i, // activations signed (else unsigned, zero-extended)
  input  wire [M*A_BITS-1:0]        act_i,      // M activations of one group, lane j at [j*A_BITS +: A_BITS]
  input  wire [N*W_BITS-1:0]        val_i,      // N kept weights (signed), lane j at [j*W_BITS +: W_BITS]
  input  wire [N*IDX_BITS-1:0]      idx_i,      // N indices in [0, M), lane j at [j*IDX_BITS +: IDX_BITS]
  input  wire signed [ACC_BITS-1:0] bias_i,
  output wire signed [ACC_BITS-1:0] acc_o       // = acc_q
);

  // Exact width of one product (A_BITS + 1 signed activation times W_BITS signed weight).
  localparam integer PROD_BITS = A_BITS + W_BITS + 1;
  // Index width the contract requires.
  localparam integer IDX_BITS_EXP = (M > 1) ? $clog2(M) : 1;
  // M as an (IDX_BITS + 1)-bit constant: an index >= M selects 0.
  localparam [IDX_BITS:0] M_L = M[IDX_BITS:0];

  initial begin
    if (M < 1 || M > 256) begin
      $fatal(1, "%m: M=%0d is outside 1..256", M);
    end
    if (N < 1 || N > M) begin
      $fatal(1, "%m: N=%0d must be in 1..M (M=%0d)", N, M);
    end
    if (IDX_BITS != IDX_BITS_EXP) begin
      $fatal(1, "%m: IDX_BITS=%0d but M=%0d needs %0d", IDX_BITS, M, IDX_BITS_EXP);
    end
    if (A_BITS < 2 || A_BITS > 16 || W_BITS < 2 || W_BITS > 16) begin
      $fatal(1, "%m: A_BITS=%0d and W_BITS=%0d must be in 2..16", A_BITS, W_BITS);
    end
    if (ACC_BITS < PROD_BITS || ACC_BITS > 64) begin
      $fatal(1, "%m: ACC_BITS=%0d must be in A_BITS+W_BITS+1=%0d..64", ACC_BITS, PROD_BITS);
    end
  end

  // rst_ni is part of the common port list; the accumulator is datapath and is not reset.
  wire unused_rst;
  assign unused_rst = rst_ni;

  // ---------------------------------------------------------------- per kept value: mux, multiply, sum
  reg signed [ACC_BITS-1:0] acc_q, acc_d;
  reg signed [ACC_BITS-1:0] sum_d;  // sum_j w[j] * a[idx[j]], wraps
  reg        [IDX_BITS-1:0] idx_d;  // idx[j]
  reg        [A_BITS-1:0]   sel_d;  // a[idx[j]] (M:1 mux; 0 for an index >= M)
  reg signed [A_BITS:0]     a_d;    // sel_d sign- or zero-extended to A_BITS + 1
  reg signed [W_BITS-1:0]   w_d;    // w[j]
  integer j;

  always @* begin
    sum_d = {ACC_BITS{1'b0}};
    for (j = 0; j < N; j = j + 1) begin
      idx_d = idx_i[j*IDX_BITS +: IDX_BITS];
      sel_d = ({1'b0, idx_d} < M_L) ? act_i[idx_d*A_BITS +: A_BITS] : {A_BITS{1'b0}};
      a_d   = $signed({a_signed_i & sel_d[A_BITS-1], sel_d});
      w_d   = $signed(val_i[j*W_BITS +: W_BITS]);
      // Signed context of ACC_BITS: a_d and w_d are sign-extended to ACC_BITS before the
      // multiply (IEEE 1364 5.5), so the product is exact. (An explicit {{..}} replication
      // here made the whole Icarus co-simulation ~30% slower; hence the waiver.)
      /* verilator lint_off WIDTHEXPAND */
      sum_d = sum_d + a_d * w_d;
      /* verilator lint_on WIDTHEXPAND */
    end
  end

  // ---------------------------------------------------------------- accumulate (wraps)
  always @* begin
    acc_d = acc_q;
    if (clear_i) begin
      acc_d = bias_i;
    end
    if (valid_i) begin
      acc_d = acc_d + sum_d;
    end
  end

  always @(posedge clk_i) begin
    acc_q <= acc_d;
  end

  assign acc_o = acc_q;

endmodule

`default_nettype wire
