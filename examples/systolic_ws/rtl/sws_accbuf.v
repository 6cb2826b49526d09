// sws_accbuf: ping-pong accumulator banks, per-channel parameter banks and the drain of sws_top.
//
// Two banks b in {0, 1}, each holding one output tile: ACC_DEPTH rows x COLS channels of
// ACC_BITS accumulators plus the tile's COLS (bias_eff, M0, sh). Tiles alternate banks.
//
// Accumulate (one array output row per cycle, from sws_array): for the row tagged
// (bank b, row p, first, done) and every column c
//
//   acc[b][p][c] <= wrap_ACC_BITS( (first ? bias[b][c] : acc[b][p][c]) + psum[c] )
//
// (first marks the tile's first K block, so bias_eff enters once; the sum wraps mod
// 2^ACC_BITS like SPEC section 2's accumulator). 'done' marks the tile's last row of its last K
// block: the bank becomes ready to drain at that edge.
//
// Drain: the banks are drained in tile order (dr_bank_q alternates). While bank dr_bank_q is
// ready and adv_i is high, one row per cycle is read into the stage-A registers (acc, M0, sh
// of every column, the lane mask "channel < cols of the tile", tlast = last row of the tile,
// end = last row of the layer's last tile). Issuing a bank's last row clears its ready flag and
// pulses bank_free_o[b] (the parser may then load the bank's next tile). adv_i low holds stage A.
//
// Parameter writes (pw_*) and the tile-start record (ts_*) come from sws_ctrl; the parser never
// writes a bank before its previous tile's last row has been issued.
`timescale 1ns / 1ps
`default_nettype none

module sws_accbuf #(
  parameter integer COLS      = 4,   // channels per tile
  parameter integer ACC_DEPTH = 16,  // rows per tile
  parameter integer ACC_BITS  = 32,  // accumulator width (wraps), 2..32
  parameter integer MULT_BITS = 32,  // M0 width, 1..32
  parameter integer PS_BITS   = 20,  // partial-sum width from sws_array
  parameter integer IDX_BITS  = 5,   // row / channel counter width
  parameter integer TAG_BITS  = 8    // IDX_BITS + 3: {done, first, bank, row}
) (
  input  wire                      clk_i,
  input  wire                      rst_ni,
  // array output row
  input  wire [COLS*PS_BITS-1:0]   psum_i,
  input  wire                      pv_i,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire [TAG_BITS-1:0]       ptag_i,      // row bits above RB are always 0
  /* verilator lint_on UNUSEDSIGNAL */
  // parameter write
  input  wire                      pw_en_i,
  input  wire                      pw_bank_i,
  input  wire [IDX_BITS-1:0]       pw_chan_i,
  input  wire [1:0]                pw_word_i,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire [31:0]               pw_data_i,   // only the low ACC_BITS / MULT_BITS / 6 bits are kept
  /* verilator lint_on UNUSEDSIGNAL */
  // tile start
  input  wire                      ts_en_i,
  input  wire                      ts_bank_i,
  input  wire [IDX_BITS-1:0]       ts_rows_i,
  input  wire [IDX_BITS-1:0]       ts_cols_i,
  input  wire                      ts_last_i,
  // drain
  input  wire                      adv_i,
  output reg                       a_valid_o,
  output reg  [COLS*ACC_BITS-1:0]  a_acc_o,
  output reg  [COLS*MULT_BITS-1:0] a_m0_o,
  output reg  [COLS*6-1:0]         a_sh_o,
  output reg  [COLS-1:0]           a_mask_o,
  output reg                       a_tlast_o,
  output reg                       a_end_o,
  output reg  [1:0]                bank_free_o
);

  // Width of the accumulate sum: both operands sign-extended by at least one bit.
  localparam integer X_BITS = ((PS_BITS > ACC_BITS) ? PS_BITS : ACC_BITS) + 1;
  localparam [IDX_BITS-1:0] ONE_I = 1;
  // Row address bits of one bank; the memory is 2 x 2^RB rows (bank in the top address bit).
  localparam integer RB = (ACC_DEPTH > 1) ? $clog2(ACC_DEPTH) : 1;

  initial begin
    if (ACC_BITS < 2 || ACC_BITS > 32) begin
      $fatal(1, "%m: ACC_BITS=%0d is outside 2..32", ACC_BITS);
    end
    if (MULT_BITS < 1 || MULT_BITS > 32) begin
      $fatal(1, "%m: MULT_BITS=%0d is outside 1..32", MULT_BITS);
    end
    if (TAG_BITS != IDX_BITS + 3) begin
      $fatal(1, "%m: TAG_BITS=%0d must be IDX_BITS + 3", TAG_BITS);
    end
  end

  // ---------------------------------------------------------------- tag fields
  wire                acc_done_w  = ptag_i[IDX_BITS+2];
  wire                acc_first_w = ptag_i[IDX_BITS+1];
  wire                acc_bank_w  = ptag_i[IDX_BITS];
  wire [RB-1:0]       acc_row_w   = ptag_i[RB-1:0];

  // ---------------------------------------------------------------- drain control
  reg                dr_bank_q, dr_bank_d;
  reg [IDX_BITS-1:0] dr_row_q, dr_row_d;
  reg [1:0]          ready_q, ready_d;
  reg [IDX_BITS-1:0] rows0_q, rows1_q, cols0_q, cols1_q;
  reg                last0_q, last1_q;
  reg                issue_d, lastrow_d;
  wire [IDX_BITS-1:0] cols_sel_w = dr_bank_q ? cols1_q : cols0_q;

  always @* begin
    issue_d     = adv_i && ready_q[dr_bank_q];
    lastrow_d   = (dr_row_q == (dr_bank_q ? rows1_q : rows0_q) - ONE_I);
    dr_bank_d   = dr_bank_q;
    dr_row_d    = dr_row_q;
    ready_d     = ready_q;
    bank_free_o = 2'b00;
    if (pv_i && acc_done_w) begin
      ready_d[acc_bank_w] = 1'b1;
    end
    if (issue_d) begin
      if (lastrow_d) begin
        dr_row_d               = {IDX_BITS{1'b0}};
        dr_bank_d              = !dr_bank_q;
        ready_d[dr_bank_q]     = 1'b0;
        bank_free_o[dr_bank_q] = 1'b1;
      end else begin
        dr_row_d = dr_row_q + ONE_I;
      end
    end
  end

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      dr_bank_q <= 1'b0;
      dr_row_q  <= {IDX_BITS{1'b0}};
      ready_q   <= 2'b00;
    end else begin
      dr_bank_q <= dr_bank_d;
      dr_row_q  <= dr_row_d;
      ready_q   <= ready_d;
    end
  end

  always @(posedge clk_i) begin
    if (ts_en_i && !ts_bank_i) begin
      rows0_q <= ts_rows_i;
      cols0_q <= ts_cols_i;
      last0_q <= ts_last_i;
    end
    if (ts_en_i && ts_bank_i) begin
      rows1_q <= ts_rows_i;
      cols1_q <= ts_cols_i;
      last1_q <= ts_last_i;
    end
  end

  // stage A: shared fields (valid is control, reset)
  always @(posedge clk_i) begin
    if (!rst_ni) begin
      a_valid_o <= 1'b0;
    end else if (adv_i) begin
      a_valid_o <= issue_d;
    end
  end

  integer j;
  always @(posedge clk_i) begin
    if (issue_d) begin
      a_tlast_o <= lastrow_d;
      a_end_o   <= lastrow_d && (dr_bank_q ? last1_q : last0_q);
      for (j = 0; j < COLS; j = j + 1) begin
        a_mask_o[j] <= (j < cols_sel_w);
      end
    end
  end

  // wrap_ACC_BITS(base + ps), ps already sign-extended to X_BITS
  function [ACC_BITS-1:0] add_wrap;
    input [ACC_BITS-1:0] base;
    input [X_BITS-1:0]   ps;
    // the carry bits above ACC_BITS are dropped (the accumulator wraps)
    /* verilator lint_off UNUSEDSIGNAL */
    reg   [X_BITS-1:0]   sum;
    /* verilator lint_on UNUSEDSIGNAL */
    begin
      sum      = {{(X_BITS - ACC_BITS){base[ACC_BITS-1]}}, base} + ps;
      add_wrap = sum[ACC_BITS-1:0];
    end
  endfunction

  // ---------------------------------------------------------------- per column: banks and stage A
  genvar c;
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_col
      localparam [IDX_BITS-1:0] COL_ID = c;
      reg signed [ACC_BITS-1:0] mem_q  [0:(2 << RB) - 1];
      reg signed [ACC_BITS-1:0] bias_q [0:1];
      reg        [MULT_BITS-1:0] m0_q  [0:1];
      reg        [5:0]          sh_q   [0:1];
      wire signed [PS_BITS-1:0] ps_w = psum_i[c*PS_BITS +: PS_BITS];
      wire signed [X_BITS-1:0]  ps_x_w = $signed({{(X_BITS - PS_BITS){ps_w[PS_BITS-1]}}, ps_w});

      // The read-modify-write stays inside the clocked block (a combinational block reading the
      // memory would wake on every word in Icarus).
      always @(posedge clk_i) begin
        if (pv_i) begin
          mem_q[{acc_bank_w, acc_row_w}] <=
              add_wrap(acc_first_w ? bias_q[acc_bank_w] : mem_q[{acc_bank_w, acc_row_w}], ps_x_w);
        end
        if (pw_en_i && pw_chan_i == COL_ID) begin
          case (pw_word_i)
            2'd0:    bias_q[pw_bank_i] <= pw_data_i[ACC_BITS-1:0];
            2'd1:    m0_q[pw_bank_i]   <= pw_data_i[MULT_BITS-1:0];
            default: sh_q[pw_bank_i]   <= pw_data_i[5:0];
          endcase
        end
        if (issue_d) begin
          a_acc_o[c*ACC_BITS +: ACC_BITS]   <= mem_q[{dr_bank_q, dr_row_q[RB-1:0]}];
          a_m0_o[c*MULT_BITS +: MULT_BITS]  <= m0_q[dr_bank_q];
          a_sh_o[c*6 +: 6]                  <= sh_q[dr_bank_q];
        end
      end
    end
  endgenerate

endmodule

`default_nettype wire
