// sws_top: weight-stationary systolic-array accelerator for one fused integer layer (SPEC section 2)
// with an AXI4-Stream input and output. See ../README.md for the stream formats and the timing.
//
//   acc[p][c] = wrap_ACC_BITS( bias_eff[c] + sum_k x[p][k] * W[c][k] )
//   y[p][c]   = clamp(z_y + round_shift(acc[p][c] * M0[c], sh[c], mode), lo, hi)
//
// for a GEMM of P rows by C_out channels over K, tiled into row tiles of ACC_DEPTH rows, channel
// tiles of COLS channels and K blocks of ROWS positions (any P, K, C_out >= 1).
//
//   s_axis (LANES bytes per beat) -> sws_ctrl --weights--> sws_array (ROWS x COLS sws_pe)
//                                       |  \--activation rows (tagged)--^          |
//                                       |                          psum rows (deskewed)
//                                       \--bias/M0/sh--> sws_accbuf (2 banks) <----/
//                                                            | drain, one row per cycle
//                                                   COLS x sws_requant (3 stages)
//                                                            |
//                                      m_axis (COLS lanes of Y_BITS; tlast on a tile's last row)
//
// Streams: a transfer is tvalid && tready; m_axis_tvalid is a register, s_axis_tready depends on
// registers only. The output pipeline (drain, requantizer, output register) advances when the
// output register is empty or accepted (adv = !m_axis_tvalid || m_axis_tready); the array never
// stalls (back-pressure reaches the input through the accumulator-bank rule of sws_ctrl).
`timescale 1ns / 1ps
`default_nettype none

module sws_top #(
  parameter integer ROWS      = 4,   // array rows = K positions per block, 1..64
  parameter integer COLS      = 4,   // array columns = channels per tile, 1..64
  parameter integer LANES     = 4,   // input beat width in bytes, >= max(ROWS, COLS, 4)
  parameter integer A_BITS    = 8,   // activation width (low bits of a byte lane), 2..8
  parameter integer W_BITS    = 8,   // weight width (signed, low bits of a byte lane), 2..8
  parameter integer ACC_BITS  = 32,  // accumulator width (wraps), 2..32
  parameter integer MULT_BITS = 32,  // M0 width (unsigned), 1..32
  parameter integer Y_BITS    = 8,   // output lane width, 8, 16, 24 or 32
  parameter integer ACC_DEPTH = 16   // rows per row tile (depth of one accumulator bank), >= 1
) (
  input  wire                     clk_i,
  input  wire                     rst_ni,         // active-low synchronous reset
  input  wire [LANES*8-1:0]       s_axis_tdata,
  input  wire                     s_axis_tvalid,
  output wire                     s_axis_tready,
  input  wire                     s_axis_tlast,
  output wire [COLS*Y_BITS-1:0]   m_axis_tdata,
  output wire                     m_axis_tvalid,
  input  wire                     m_axis_tready,
  output wire                     m_axis_tlast,
  output wire                     busy_o,         // a layer is in progress (first beat .. last output)
  output wire [2:0]               err_o,          // see sws_ctrl
  output wire [31:0]              cycles_o        // cycles of the current / last layer
);

  localparam integer MAX_DIM  = (ROWS > COLS) ? ((ROWS > ACC_DEPTH) ? ROWS : ACC_DEPTH)
                                              : ((COLS > ACC_DEPTH) ? COLS : ACC_DEPTH);
  localparam integer IDX_BITS = $clog2(MAX_DIM) + 1;
  localparam integer TAG_BITS = IDX_BITS + 3;
  localparam integer PS_BITS  = A_BITS + W_BITS + 2 + $clog2(ROWS);

  initial begin
    if (Y_BITS % 8 != 0 || Y_BITS < 8 || Y_BITS > 32) begin
      $fatal(1, "%m: Y_BITS=%0d must be 8, 16, 24 or 32 (byte lanes)", Y_BITS);
    end
  end

  // ---------------------------------------------------------------- parser
  wire signed [31:0]    zy_w, lo_w, hi_w;
  wire [1:0]            mode_w;
  wire                  asg_w;
  wire                  pw_en_w, pw_bank_w;
  wire [IDX_BITS-1:0]   pw_chan_w;
  wire [1:0]            pw_word_w;
  wire [31:0]           pw_data_w;
  wire                  ww_en_w, ww_bank_w;
  wire [IDX_BITS-1:0]   ww_row_w;
  wire [COLS*8-1:0]     ww_lanes_w;
  wire                  av_valid_w, av_bank_w;
  wire [ROWS*8-1:0]     av_lanes_w;
  wire [ROWS-1:0]       av_mask_w;
  wire [TAG_BITS-1:0]   av_tag_w;
  wire                  ts_en_w, ts_bank_w, ts_last_w;
  wire [IDX_BITS-1:0]   ts_rows_w, ts_cols_w;
  wire [1:0]            bank_free_w;
  wire                  layer_done_w;

  sws_ctrl #(
    .ROWS      (ROWS),
    .COLS      (COLS),
    .LANES     (LANES),
    .ACC_DEPTH (ACC_DEPTH),
    .MULT_BITS (MULT_BITS),
    .IDX_BITS  (IDX_BITS),
    .TAG_BITS  (TAG_BITS)
  ) u_ctrl (
    .clk_i          (clk_i),
    .rst_ni         (rst_ni),
    .s_axis_tdata   (s_axis_tdata),
    .s_axis_tvalid  (s_axis_tvalid),
    .s_axis_tready  (s_axis_tready),
    .s_axis_tlast   (s_axis_tlast),
    .cfg_zy_o       (zy_w),
    .cfg_lo_o       (lo_w),
    .cfg_hi_o       (hi_w),
    .cfg_mode_o     (mode_w),
    .cfg_a_signed_o (asg_w),
    .pw_en_o        (pw_en_w),
    .pw_bank_o      (pw_bank_w),
    .pw_chan_o      (pw_chan_w),
    .pw_word_o      (pw_word_w),
    .pw_data_o      (pw_data_w),
    .ww_en_o        (ww_en_w),
    .ww_bank_o      (ww_bank_w),
    .ww_row_o       (ww_row_w),
    .ww_lanes_o     (ww_lanes_w),
    .av_valid_o     (av_valid_w),
    .av_lanes_o     (av_lanes_w),
    .av_mask_o      (av_mask_w),
    .av_bank_o      (av_bank_w),
    .av_tag_o       (av_tag_w),
    .ts_en_o        (ts_en_w),
    .ts_bank_o      (ts_bank_w),
    .ts_rows_o      (ts_rows_w),
    .ts_cols_o      (ts_cols_w),
    .ts_last_o      (ts_last_w),
    .bank_free_i    (bank_free_w),
    .layer_done_i   (layer_done_w),
    .busy_o         (busy_o),
    .err_o          (err_o),
    .cycles_o       (cycles_o)
  );

  // ---------------------------------------------------------------- systolic array
  wire [COLS*PS_BITS-1:0] psum_w;
  wire                    pv_w;
  wire [TAG_BITS-1:0]     ptag_w;

  sws_array #(
    .ROWS      (ROWS),
    .COLS      (COLS),
    .A_BITS    (A_BITS),
    .W_BITS    (W_BITS),
    .TAG_BITS  (TAG_BITS),
    .RIDX_BITS (IDX_BITS)
  ) u_array (
    .clk_i      (clk_i),
    .rst_ni     (rst_ni),
    .a_signed_i (asg_w),
    .a_valid_i  (av_valid_w),
    .a_lanes_i  (av_lanes_w),
    .a_mask_i   (av_mask_w),
    .a_bank_i   (av_bank_w),
    .tag_i      (av_tag_w),
    .w_we_i     (ww_en_w),
    .w_bank_i   (ww_bank_w),
    .w_row_i    (ww_row_w),
    .w_lanes_i  (ww_lanes_w),
    .psum_o     (psum_w),
    .valid_o    (pv_w),
    .tag_o      (ptag_w)
  );

  // ---------------------------------------------------------------- accumulators and drain
  wire                      adv_w;
  wire                      a_valid_w, a_tlast_w, a_end_w;
  wire [COLS*ACC_BITS-1:0]  a_acc_w;
  wire [COLS*MULT_BITS-1:0] a_m0_w;
  wire [COLS*6-1:0]         a_sh_w;
  wire [COLS-1:0]           a_mask_w;

  sws_accbuf #(
    .COLS      (COLS),
    .ACC_DEPTH (ACC_DEPTH),
    .ACC_BITS  (ACC_BITS),
    .MULT_BITS (MULT_BITS),
    .PS_BITS   (PS_BITS),
    .IDX_BITS  (IDX_BITS),
    .TAG_BITS  (TAG_BITS)
  ) u_accbuf (
    .clk_i       (clk_i),
    .rst_ni      (rst_ni),
    .psum_i      (psum_w),
    .pv_i        (pv_w),
    .ptag_i      (ptag_w),
    .pw_en_i     (pw_en_w),
    .pw_bank_i   (pw_bank_w),
    .pw_chan_i   (pw_chan_w),
    .pw_word_i   (pw_word_w),
    .pw_data_i   (pw_data_w),
    .ts_en_i     (ts_en_w),
    .ts_bank_i   (ts_bank_w),
    .ts_rows_i   (ts_rows_w),
    .ts_cols_i   (ts_cols_w),
    .ts_last_i   (ts_last_w),
    .adv_i       (adv_w),
    .a_valid_o   (a_valid_w),
    .a_acc_o     (a_acc_w),
    .a_m0_o      (a_m0_w),
    .a_sh_o      (a_sh_w),
    .a_mask_o    (a_mask_w),
    .a_tlast_o   (a_tlast_w),
    .a_end_o     (a_end_w),
    .bank_free_o (bank_free_w)
  );

  // ---------------------------------------------------------------- requantizer lanes (stages B-D)
  // valid / tlast / end / lane mask alongside stages B, C, D (D is the output register)
  reg [2:0]             vld_q;
  reg [2:0]             tlast_q, end_q;
  reg [COLS-1:0]        mask0_q, mask1_q, mask2_q;
  reg [COLS*Y_BITS-1:0] tdata_d;

  assign adv_w = !vld_q[2] || m_axis_tready;

  genvar c;
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_rq
      wire [Y_BITS-1:0] y_w;
      sws_requant #(
        .ACC_BITS  (ACC_BITS),
        .MULT_BITS (MULT_BITS),
        .Y_BITS    (Y_BITS)
      ) u_rq (
        .clk_i  (clk_i),
        .en_i   (adv_w),
        .acc_i  (a_acc_w[c*ACC_BITS +: ACC_BITS]),
        .m0_i   (a_m0_w[c*MULT_BITS +: MULT_BITS]),
        .sh_i   (a_sh_w[c*6 +: 6]),
        .mode_i (mode_w),
        .zy_i   (zy_w),
        .lo_i   (lo_w),
        .hi_i   (hi_w),
        .y_o    (y_w)
      );
      // lanes of channels beyond the tile's last one carry 0
      always @* begin
        tdata_d[c*Y_BITS +: Y_BITS] = mask2_q[c] ? y_w : {Y_BITS{1'b0}};
      end
    end
  endgenerate

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      vld_q <= 3'b000;
    end else if (adv_w) begin
      vld_q <= {vld_q[1:0], a_valid_w};
    end
  end

  always @(posedge clk_i) begin
    if (adv_w) begin
      tlast_q   <= {tlast_q[1:0], a_tlast_w};
      end_q     <= {end_q[1:0], a_end_w};
      mask0_q   <= a_mask_w;
      mask1_q   <= mask0_q;
      mask2_q   <= mask1_q;
    end
  end

  assign m_axis_tdata  = tdata_d;
  assign m_axis_tvalid = vld_q[2];
  assign m_axis_tlast  = tlast_q[2];
  assign layer_done_w  = vld_q[2] && m_axis_tready && end_q[2];

endmodule

`default_nettype wire
