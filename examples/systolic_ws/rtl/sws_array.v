// sws_array: ROWS x COLS weight-stationary systolic array with input skew and output deskew.
//
// PE (r, c) holds the weight W[k0 + r][c0 + c] of the current block (two banks, see sws_pe).
// An activation row x[p][k0 .. k0+ROWS-1] enters as one word (lane r = x[p][k0 + r]); lane r is
// delayed r cycles (skew) so that it meets, in PE (r, c), the partial sum of the same row p coming
// down from PE (r-1, c). Activations move right one PE per cycle, partial sums down one PE per
// cycle; column c's bottom PE therefore emits
//
//   psum[p][c] = sum_{r < ROWS, a_mask[r]} x[p][k0 + r] * W[k0 + r][c0 + c]      (exact)
//
// ROWS + c cycles after the row entered, and the deskew delays column c by COLS - 1 - c more
// cycles so that the whole output row leaves together, with the row's tag, exactly
//
//   LATENCY = ROWS + COLS - 1 cycles after a_valid_i (a row presented after edge e leaves after
//   edge e + LATENCY).
//
// Rows of a row word whose a_mask bit is 0 add nothing (a short last K block). Activations are
// the low A_BITS bits of each 8-bit lane, sign-extended when a_signed_i else zero-extended.
// Weights: w_we_i writes lane c of w_lanes_i (its low W_BITS bits, signed) into PE
// (w_row_i, c), bank w_bank_i, at the rising edge (COLS weights per cycle).
//
// Packing: a_lanes_i lane r at [8*r +: 8]; w_lanes_i lane c at [8*c +: 8]; psum_o column c at
// [c*PS_BITS +: PS_BITS] with PS_BITS = A_BITS + W_BITS + 2 + clog2(ROWS) (signed).
`timescale 1ns / 1ps
`default_nettype none

module sws_array #(
  parameter integer ROWS      = 4,  // PE rows (reduction positions per block), 1..64
  parameter integer COLS      = 4,  // PE columns (output channels per block), 1..64
  parameter integer A_BITS    = 8,  // activation width, 2..8
  parameter integer W_BITS    = 8,  // weight width (signed), 2..8
  parameter integer TAG_BITS  = 8,  // width of the row tag carried alongside, >= 1
  parameter integer RIDX_BITS = 2   // width of w_row_i, >= 1 and 2^RIDX_BITS >= ROWS
) (
  input  wire                       clk_i,
  input  wire                       rst_ni,      // active-low synchronous reset (valid bits)
  input  wire                       a_signed_i,  // activations are signed
  input  wire                       a_valid_i,   // an activation row is presented (registered upstream)
  input  wire [ROWS*8-1:0]          a_lanes_i,
  input  wire [ROWS-1:0]            a_mask_i,    // lane r holds a real activation
  input  wire                       a_bank_i,    // weight bank of the row's block
  input  wire [TAG_BITS-1:0]        tag_i,
  input  wire                       w_we_i,
  input  wire                       w_bank_i,
  input  wire [RIDX_BITS-1:0]       w_row_i,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire [COLS*8-1:0]          w_lanes_i,   // only the low W_BITS bits of each lane are used
  /* verilator lint_on UNUSEDSIGNAL */
  output reg  [COLS*PS_BITS-1:0]    psum_o,
  output wire                       valid_o,
  output wire [TAG_BITS-1:0]        tag_o
);

  // Partial-sum width: exact product (A_BITS + W_BITS + 1) plus clog2(ROWS) + 1 bits of growth.
  localparam integer PS_BITS = A_BITS + W_BITS + 2 + $clog2(ROWS);
  // Cycles from a_valid_i to valid_o.
  localparam integer LATENCY = ROWS + COLS - 1;

  initial begin
    if (ROWS < 1 || ROWS > 64 || COLS < 1 || COLS > 64) begin
      $fatal(1, "%m: ROWS=%0d and COLS=%0d must be in 1..64", ROWS, COLS);
    end
    if (RIDX_BITS < 1 || (1 << RIDX_BITS) < ROWS) begin
      $fatal(1, "%m: RIDX_BITS=%0d cannot address ROWS=%0d rows", RIDX_BITS, ROWS);
    end
    if (TAG_BITS < 1) begin
      $fatal(1, "%m: TAG_BITS=%0d must be >= 1", TAG_BITS);
    end
  end

  // PE interconnect: activations/enables/banks move right (index c = input of column c),
  // partial sums move down (index r = input of row r). Column COLS (what leaves the rightmost
  // PEs) is not used.
  /* verilator lint_off UNUSEDSIGNAL */
  wire signed [A_BITS:0]    a_w     [0:ROWS-1][0:COLS];
  wire                      en_w    [0:ROWS-1][0:COLS];
  wire                      bank_w  [0:ROWS-1][0:COLS];
  /* verilator lint_on UNUSEDSIGNAL */
  wire signed [PS_BITS-1:0] ps_w    [0:ROWS][0:COLS-1];
  wire signed [W_BITS-1:0]  wl_w    [0:COLS-1];

  genvar r, c;

  // ---------------------------------------------------------------- input skew (row r: r cycles)
  generate
    for (r = 0; r < ROWS; r = r + 1) begin : g_row
      // Only the low A_BITS bits of a lane are the activation.
      /* verilator lint_off UNUSEDSIGNAL */
      wire        [7:0]      lane_w = a_lanes_i[8*r +: 8];
      /* verilator lint_on UNUSEDSIGNAL */
      reg  signed [A_BITS:0] ext_d;
      always @* begin
        ext_d = {a_signed_i & lane_w[A_BITS-1], lane_w[A_BITS-1:0]};
      end
      if (r == 0) begin : g_direct
        assign a_w[r][0]    = ext_d;
        assign en_w[r][0]   = a_valid_i & a_mask_i[r];
        assign bank_w[r][0] = a_bank_i;
      end else begin : g_skew
        reg signed [A_BITS:0] sa_q [0:r-1];
        reg                   se_q [0:r-1];
        reg                   sb_q [0:r-1];
        integer i;
        always @(posedge clk_i) begin
          sa_q[0] <= ext_d;
          sb_q[0] <= a_bank_i;
          for (i = 1; i < r; i = i + 1) begin
            sa_q[i] <= sa_q[i-1];
            sb_q[i] <= sb_q[i-1];
          end
        end
        always @(posedge clk_i) begin
          if (!rst_ni) begin
            for (i = 0; i < r; i = i + 1) begin
              se_q[i] <= 1'b0;
            end
          end else begin
            se_q[0] <= a_valid_i & a_mask_i[r];
            for (i = 1; i < r; i = i + 1) begin
              se_q[i] <= se_q[i-1];
            end
          end
        end
        assign a_w[r][0]    = sa_q[r-1];
        assign en_w[r][0]   = se_q[r-1];
        assign bank_w[r][0] = sb_q[r-1];
      end
    end
  endgenerate

  // ---------------------------------------------------------------- PEs
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_top
      assign ps_w[0][c] = {PS_BITS{1'b0}};
      assign wl_w[c]    = w_lanes_i[8*c +: W_BITS];
    end
    for (r = 0; r < ROWS; r = r + 1) begin : g_pr
      localparam [RIDX_BITS-1:0] ROW_ID = r;
      wire we_w = w_we_i && (w_row_i == ROW_ID);
      for (c = 0; c < COLS; c = c + 1) begin : g_pc
        sws_pe #(
          .A_BITS  (A_BITS),
          .W_BITS  (W_BITS),
          .PS_BITS (PS_BITS)
        ) u_pe (
          .clk_i    (clk_i),
          .rst_ni   (rst_ni),
          .a_i      (a_w[r][c]),
          .a_en_i   (en_w[r][c]),
          .a_bank_i (bank_w[r][c]),
          .psum_i   (ps_w[r][c]),
          .w_we_i   (we_w),
          .w_bank_i (w_bank_i),
          .w_i      (wl_w[c]),
          .a_o      (a_w[r][c+1]),
          .a_en_o   (en_w[r][c+1]),
          .a_bank_o (bank_w[r][c+1]),
          .psum_o   (ps_w[r+1][c])
        );
      end
    end
  endgenerate

  // ---------------------------------------------------------------- output deskew (column c: COLS-1-c cycles)
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_col
      wire signed [PS_BITS-1:0] out_w;
      if (c == COLS - 1) begin : g_direct
        assign out_w = ps_w[ROWS][c];
      end else begin : g_deskew
        reg signed [PS_BITS-1:0] d_q [0:COLS-2-c];
        integer i;
        always @(posedge clk_i) begin
          d_q[0] <= ps_w[ROWS][c];
          for (i = 1; i <= COLS - 2 - c; i = i + 1) begin
            d_q[i] <= d_q[i-1];
          end
        end
        assign out_w = d_q[COLS-2-c];
      end
      always @* begin
        psum_o[c*PS_BITS +: PS_BITS] = out_w;
      end
    end
  endgenerate

  // ---------------------------------------------------------------- tag and valid delay line
  reg [TAG_BITS-1:0] tag_q [0:LATENCY-1];
  reg [LATENCY-1:0]  vld_q;
  integer j;

  always @(posedge clk_i) begin
    tag_q[0] <= tag_i;
    for (j = 1; j < LATENCY; j = j + 1) begin
      tag_q[j] <= tag_q[j-1];
    end
  end

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      vld_q <= {LATENCY{1'b0}};
    end else begin
      vld_q[0] <= a_valid_i;
      for (j = 1; j < LATENCY; j = j + 1) begin
        vld_q[j] <= vld_q[j-1];
      end
    end
  end

  assign valid_o = vld_q[LATENCY-1];
  assign tag_o   = tag_q[LATENCY-1];

endmodule

`default_nettype wire
