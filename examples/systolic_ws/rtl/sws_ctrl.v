// sws_ctrl: input-stream parser and sequencer of sws_top.
//
// Consumes the AXI4-Stream input of one layer, beat by beat, in the order of README.md:
//
//   7 descriptor beats (low 32 bits): P, K, C_out, z_y, lo, hi, flags {a_signed, mode[1:0]}
//   for each row tile (pr = min(ACC_DEPTH, rows left) rows):
//     for each channel tile (cc = min(COLS, channels left) channels):
//       3*cc parameter beats: bias_eff, M0, sh of each channel         (tile start)
//       for each K block (kr = min(ROWS, K left) positions):
//         kr weight beats (lane c = W[c0+c][k0+j])                      -> PE row j, bank wbank
//         pr activation beats (lane j = x[p0+p][k0+j])                  -> the array, tagged
//
// and drives: parameter writes (to sws_accbuf), weight writes (to sws_array, at the accepting
// edge), one registered activation row per accepted activation beat (to sws_array, with its tag:
// accumulator bank, row in tile, first-K-block flag, last-row-of-tile flag) and a tile-start
// record (rows, channels, last tile) for the drain.
//
// Back-pressure rules (s_axis_tready is a function of registers only, never of tvalid):
//   * the first parameter beat of a tile waits while its accumulator bank (tile parity) is still
//     being drained (acc_busy_q, cleared by bank_free_i when the drain issues the bank's last row);
//   * the first weight beat of a block waits until COLS cycles have passed since the last
//     activation beat of the block that used the same weight bank (block parity) was accepted:
//     that activation reaches PE column COLS-1 of weight row j exactly j + COLS cycles later, and
//     row j's new weight is written j cycles after the first weight beat (whold_q counters);
//   * after the last activation beat the parser waits (tready low) until the layer's last output
//     beat has been accepted (layer_done_i), then accepts the next descriptor.
//
// Errors (err_o, cleared when the next descriptor's first beat is accepted):
//   bit 0 bad descriptor: P, K or C_out is 0, lo > hi, or flags bits [31:3] set. The layer is
//         refused: beats are discarded up to and including tlast, no output is produced.
//   bit 1 framing: tlast on a beat that is not the layer's last, or missing on the last beat.
//         tlast does not steer the parser (it counts beats); the flag reports the mismatch.
//   bit 2 parameter out of range: M0 >= 2^MULT_BITS or sh > 63 (the low bits are used).
//
// Cycle counter: cycles_o is 1 after the edge that accepts a layer's first descriptor beat and
// counts every edge up to and including the one that accepts its last output beat (layer_done_i).
`timescale 1ns / 1ps
`default_nettype none

module sws_ctrl #(
  parameter integer ROWS      = 4,   // array rows (K positions per block)
  parameter integer COLS      = 4,   // array columns (channels per tile)
  parameter integer LANES     = 4,   // input beat bytes, >= max(ROWS, COLS, 4)
  parameter integer ACC_DEPTH = 16,  // rows per row tile (accumulator bank depth)
  parameter integer MULT_BITS = 32,  // M0 width, 1..32
  parameter integer IDX_BITS  = 5,   // counter width: 2^(IDX_BITS-1) >= max(ROWS, COLS, ACC_DEPTH)
  parameter integer TAG_BITS  = 8    // IDX_BITS + 3
) (
  input  wire                  clk_i,
  input  wire                  rst_ni,
  // input stream
  // lanes at and above max(ROWS, COLS, 4) are ignored by design
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire [LANES*8-1:0]    s_axis_tdata,
  /* verilator lint_on UNUSEDSIGNAL */
  input  wire                  s_axis_tvalid,
  output wire                  s_axis_tready,
  input  wire                  s_axis_tlast,
  // layer configuration (stable from the descriptor to the end of the layer)
  output wire signed [31:0]    cfg_zy_o,
  output wire signed [31:0]    cfg_lo_o,
  output wire signed [31:0]    cfg_hi_o,
  output wire [1:0]            cfg_mode_o,
  output wire                  cfg_a_signed_o,
  // parameter write (channel pw_chan_o of bank pw_bank_o; word 0 bias, 1 M0, 2 sh)
  output wire                  pw_en_o,
  output wire                  pw_bank_o,
  output wire [IDX_BITS-1:0]   pw_chan_o,
  output wire [1:0]            pw_word_o,
  output wire [31:0]           pw_data_o,
  // weight write (PE row ww_row_o, bank ww_bank_o, lanes = the beat)
  output wire                  ww_en_o,
  output wire                  ww_bank_o,
  output wire [IDX_BITS-1:0]   ww_row_o,
  output wire [COLS*8-1:0]     ww_lanes_o,
  // activation row (registered)
  output wire                  av_valid_o,
  output wire [ROWS*8-1:0]     av_lanes_o,
  output wire [ROWS-1:0]       av_mask_o,
  output wire                  av_bank_o,
  output wire [TAG_BITS-1:0]   av_tag_o,   // {tile_done, first_k, acc_bank, row[IDX_BITS-1:0]}
  // tile start (pulse with the first parameter beat)
  output wire                  ts_en_o,
  output wire                  ts_bank_o,
  output wire [IDX_BITS-1:0]   ts_rows_o,
  output wire [IDX_BITS-1:0]   ts_cols_o,
  output wire                  ts_last_o,
  // from the drain / output
  input  wire [1:0]            bank_free_i,
  input  wire                  layer_done_i,
  // status
  output wire                  busy_o,
  output wire [2:0]            err_o,
  output wire [31:0]           cycles_o
);

  localparam [2:0] S_DESC    = 3'd0;
  localparam [2:0] S_PARAM   = 3'd1;
  localparam [2:0] S_WGT     = 3'd2;
  localparam [2:0] S_ACT     = 3'd3;
  localparam [2:0] S_WAIT    = 3'd4;
  localparam [2:0] S_DISCARD = 3'd5;

  localparam [31:0] ROWS_L  = ROWS;
  localparam [31:0] COLS_L  = COLS;
  localparam [31:0] DEPTH_L = ACC_DEPTH;
  localparam [IDX_BITS-1:0] ONE_I  = 1;
  localparam [IDX_BITS-1:0] COLS_I = COLS[IDX_BITS-1:0];
  localparam [IDX_BITS-1:0] HOLD_L = COLS_I - ONE_I;

  initial begin
    if (LANES < 4 || LANES < ROWS || LANES < COLS) begin
      $fatal(1, "%m: LANES=%0d must be >= max(ROWS=%0d, COLS=%0d, 4)", LANES, ROWS, COLS);
    end
    if (ACC_DEPTH < 1) begin
      $fatal(1, "%m: ACC_DEPTH=%0d must be >= 1", ACC_DEPTH);
    end
    if ((1 << (IDX_BITS - 1)) < ROWS || (1 << (IDX_BITS - 1)) < COLS ||
        (1 << (IDX_BITS - 1)) < ACC_DEPTH) begin
      $fatal(1, "%m: IDX_BITS=%0d is too narrow", IDX_BITS);
    end
    if (MULT_BITS < 1 || MULT_BITS > 32) begin
      $fatal(1, "%m: MULT_BITS=%0d is outside 1..32", MULT_BITS);
    end
    if (TAG_BITS != IDX_BITS + 3) begin
      $fatal(1, "%m: TAG_BITS=%0d must be IDX_BITS + 3 = %0d", TAG_BITS, IDX_BITS + 3);
    end
  end

  // ---------------------------------------------------------------- registers
  reg [2:0]          state_q, state_d;
  reg [2:0]          di_q, di_d;                 // descriptor beat index
  reg [31:0]         p_q, p_d, k_q, k_d, c_q, c_d;
  reg signed [31:0]  zy_q, zy_d, lo_q, lo_d, hi_q, hi_d;
  reg [1:0]          mode_q, mode_d;
  reg                asg_q, asg_d;
  reg [31:0]         prem_q, prem_d;             // rows left from the current row tile on
  reg [31:0]         crem_q, crem_d;             // channels left from the current channel tile on
  reg [31:0]         krem_q, krem_d;             // K positions left from the current block on
  reg [IDX_BITS-1:0] pr_q, pr_d;                 // rows of the current row tile
  reg [IDX_BITS-1:0] cc_q, cc_d;                 // channels of the current channel tile
  reg [IDX_BITS-1:0] idx_q, idx_d;               // channel / weight row / activation row
  reg [1:0]          sub_q, sub_d;               // parameter word of the channel
  reg                wbank_q, wbank_d;           // weight bank of the current block
  reg                tbank_q, tbank_d;           // accumulator bank of the current tile
  reg                firstk_q, firstk_d;
  reg [1:0]          abusy_q, abusy_d;
  reg [IDX_BITS-1:0] whold0_q, whold0_d, whold1_q, whold1_d;
  reg [2:0]          err_q, err_d;
  reg [31:0]         cyc_q, cyc_d;
  reg                counting_q, counting_d;
  // registered activation row
  reg                av_valid_q, av_valid_d;
  reg [ROWS*8-1:0]   av_lanes_q, av_lanes_d;
  reg [ROWS-1:0]     av_mask_q, av_mask_d;
  reg                av_bank_q, av_bank_d;
  reg [TAG_BITS-1:0] av_tag_q, av_tag_d;

  // ---------------------------------------------------------------- combinational helpers
  reg                ready_d;
  reg                acc_d;          // a beat is accepted this cycle
  reg [IDX_BITS-1:0] kr_d;           // K positions of the current block
  reg                lastk_d, lastc_d, lastp_d;
  reg                expect_last_d;  // this beat must carry tlast
  reg [31:0]         word_d;         // low 32 bits of the beat
  reg                desc_bad_d;
  reg [31:0]         np_rem_d, nc_rem_d;
  integer            j;

  // min(limit, left) as an IDX_BITS count (left >= 1)
  function [IDX_BITS-1:0] clip;
    input [31:0] left;
    input [31:0] limit;
    begin
      if (left > limit) begin
        clip = limit[IDX_BITS-1:0];
      end else begin
        clip = left[IDX_BITS-1:0];
      end
    end
  endfunction

  always @* begin
    word_d  = s_axis_tdata[31:0];
    kr_d    = clip(krem_q, ROWS_L);
    lastk_d = krem_q <= ROWS_L;
    lastc_d = crem_q <= COLS_L;
    lastp_d = prem_q <= DEPTH_L;
    case (state_q)
      S_DESC, S_ACT, S_DISCARD: ready_d = 1'b1;
      S_PARAM: ready_d = !(idx_q == {IDX_BITS{1'b0}} && sub_q == 2'd0 && abusy_q[tbank_q]);
      S_WGT:   ready_d = !(idx_q == {IDX_BITS{1'b0}} &&
                           ((wbank_q ? whold1_q : whold0_q) != {IDX_BITS{1'b0}}));
      default: ready_d = 1'b0;
    endcase
    acc_d = s_axis_tvalid && ready_d;
    expect_last_d = (state_q == S_ACT) && (idx_q == pr_q - ONE_I) && lastk_d && lastc_d && lastp_d;
    // evaluated on the flags beat (di_q == 6): P, K, C_out, lo, hi are registered by then
    desc_bad_d = (p_q == 32'd0) || (k_q == 32'd0) || (c_q == 32'd0) || (lo_q > hi_q)
                 || (word_d[31:3] != 29'd0);
    np_rem_d = prem_q - DEPTH_L;
    nc_rem_d = crem_q - COLS_L;
  end

  // ---------------------------------------------------------------- next state
  always @* begin
    state_d = state_q;   di_d = di_q;
    p_d = p_q;  k_d = k_q;  c_d = c_q;
    zy_d = zy_q;  lo_d = lo_q;  hi_d = hi_q;  mode_d = mode_q;  asg_d = asg_q;
    prem_d = prem_q;  crem_d = crem_q;  krem_d = krem_q;
    pr_d = pr_q;  cc_d = cc_q;  idx_d = idx_q;  sub_d = sub_q;
    wbank_d = wbank_q;  tbank_d = tbank_q;  firstk_d = firstk_q;
    abusy_d = abusy_q & ~bank_free_i;
    whold0_d = (whold0_q != {IDX_BITS{1'b0}}) ? whold0_q - ONE_I : whold0_q;
    whold1_d = (whold1_q != {IDX_BITS{1'b0}}) ? whold1_q - ONE_I : whold1_q;
    err_d = err_q;
    counting_d = counting_q;
    cyc_d = counting_q ? cyc_q + 32'd1 : cyc_q;
    av_valid_d = 1'b0;
    av_lanes_d = av_lanes_q;  av_mask_d = av_mask_q;  av_bank_d = av_bank_q;  av_tag_d = av_tag_q;

    if (layer_done_i) begin
      counting_d = 1'b0;
    end
    // framing: inside a layer tlast must be exactly on its last beat (a refused layer's
    // descriptor may end the frame; see S_DESC)
    if (acc_d && (state_q == S_PARAM || state_q == S_WGT || state_q == S_ACT) &&
        (s_axis_tlast != expect_last_d)) begin
      err_d[1] = 1'b1;
    end

    case (state_q)
      S_DESC: begin
        if (acc_d) begin
          di_d = di_q + 3'd1;
          if (s_axis_tlast && di_q != 3'd0 && di_q != 3'd6) begin
            err_d[1] = 1'b1;  // a frame that ends inside the descriptor
          end
          case (di_q)
            3'd0: begin
              p_d = word_d;
              err_d = {1'b0, s_axis_tlast, 1'b0};
              cyc_d = 32'd1;
              counting_d = 1'b1;
            end
            3'd1: k_d  = word_d;
            3'd2: c_d  = word_d;
            3'd3: zy_d = word_d;
            3'd4: lo_d = word_d;
            3'd5: hi_d = word_d;
            default: begin  // flags: the last descriptor beat
              mode_d = word_d[1:0];
              asg_d  = word_d[2];
              di_d   = 3'd0;
              if (desc_bad_d) begin
                err_d[0]   = 1'b1;
                counting_d = 1'b0;
                state_d    = s_axis_tlast ? S_DESC : S_DISCARD;
              end else begin
                if (s_axis_tlast) begin
                  err_d[1] = 1'b1;
                end
                state_d  = S_PARAM;
                prem_d   = p_q;
                crem_d   = c_q;
                krem_d   = k_q;
                pr_d     = clip(p_q, DEPTH_L);
                cc_d     = clip(c_q, COLS_L);
                idx_d    = {IDX_BITS{1'b0}};
                sub_d    = 2'd0;
                firstk_d = 1'b1;
              end
            end
          endcase
        end
      end

      S_PARAM: begin
        if (acc_d) begin
          if (idx_q == {IDX_BITS{1'b0}} && sub_q == 2'd0) begin
            abusy_d[tbank_q] = 1'b1;
          end
          if (sub_q == 2'd1 && MULT_BITS < 32 && (word_d >> MULT_BITS) != 32'd0) begin
            err_d[2] = 1'b1;
          end
          if (sub_q == 2'd2 && word_d[31:6] != 26'd0) begin
            err_d[2] = 1'b1;
          end
          if (sub_q != 2'd2) begin
            sub_d = sub_q + 2'd1;
          end else begin
            sub_d = 2'd0;
            if (idx_q == cc_q - ONE_I) begin
              idx_d   = {IDX_BITS{1'b0}};
              state_d = S_WGT;
            end else begin
              idx_d = idx_q + ONE_I;
            end
          end
        end
      end

      S_WGT: begin
        if (acc_d) begin
          if (idx_q == kr_d - ONE_I) begin
            idx_d   = {IDX_BITS{1'b0}};
            state_d = S_ACT;
          end else begin
            idx_d = idx_q + ONE_I;
          end
        end
      end

      S_ACT: begin
        if (acc_d) begin
          av_valid_d = 1'b1;
          av_lanes_d = s_axis_tdata[ROWS*8-1:0];
          for (j = 0; j < ROWS; j = j + 1) begin
            av_mask_d[j] = (j < kr_d);
          end
          av_bank_d = wbank_q;
          av_tag_d  = {lastk_d && (idx_q == pr_q - ONE_I), firstk_q, tbank_q, idx_q};
          if (idx_q != pr_q - ONE_I) begin
            idx_d = idx_q + ONE_I;
          end else begin
            // end of the block: its weight bank becomes reusable COLS cycles from now
            idx_d = {IDX_BITS{1'b0}};
            if (wbank_q) begin
              whold1_d = HOLD_L;
            end else begin
              whold0_d = HOLD_L;
            end
            wbank_d  = !wbank_q;
            firstk_d = 1'b0;
            state_d  = S_WGT;
            krem_d   = krem_q - ROWS_L;
            if (lastk_d) begin
              // end of the tile: next channel tile, next row tile, or the end of the input
              tbank_d  = !tbank_q;
              firstk_d = 1'b1;
              krem_d   = k_q;
              state_d  = S_PARAM;
              if (!lastc_d) begin
                crem_d = nc_rem_d;
                cc_d   = clip(nc_rem_d, COLS_L);
              end else if (!lastp_d) begin
                prem_d = np_rem_d;
                pr_d   = clip(np_rem_d, DEPTH_L);
                crem_d = c_q;
                cc_d   = clip(c_q, COLS_L);
              end else begin
                state_d = S_WAIT;
              end
            end
          end
        end
      end

      S_WAIT: begin
        if (layer_done_i) begin
          state_d = S_DESC;
        end
      end

      S_DISCARD: begin
        if (acc_d && s_axis_tlast) begin
          state_d = S_DESC;
        end
      end

      default: state_d = S_DESC;
    endcase
  end

  // ---------------------------------------------------------------- registers
  always @(posedge clk_i) begin
    p_q <= p_d;  k_q <= k_d;  c_q <= c_d;
    zy_q <= zy_d;  lo_q <= lo_d;  hi_q <= hi_d;  mode_q <= mode_d;  asg_q <= asg_d;
    prem_q <= prem_d;  crem_q <= crem_d;  krem_q <= krem_d;
    pr_q <= pr_d;  cc_q <= cc_d;
    av_lanes_q <= av_lanes_d;  av_mask_q <= av_mask_d;  av_bank_q <= av_bank_d;
    av_tag_q <= av_tag_d;
  end

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      state_q    <= S_DESC;
      di_q       <= 3'd0;
      idx_q      <= {IDX_BITS{1'b0}};
      sub_q      <= 2'd0;
      wbank_q    <= 1'b0;
      tbank_q    <= 1'b0;
      firstk_q   <= 1'b1;
      abusy_q    <= 2'b00;
      whold0_q   <= {IDX_BITS{1'b0}};
      whold1_q   <= {IDX_BITS{1'b0}};
      err_q      <= 3'd0;
      cyc_q      <= 32'd0;
      counting_q <= 1'b0;
      av_valid_q <= 1'b0;
    end else begin
      state_q    <= state_d;
      di_q       <= di_d;
      idx_q      <= idx_d;
      sub_q      <= sub_d;
      wbank_q    <= wbank_d;
      tbank_q    <= tbank_d;
      firstk_q   <= firstk_d;
      abusy_q    <= abusy_d;
      whold0_q   <= whold0_d;
      whold1_q   <= whold1_d;
      err_q      <= err_d;
      cyc_q      <= cyc_d;
      counting_q <= counting_d;
      av_valid_q <= av_valid_d;
    end
  end

  // ---------------------------------------------------------------- outputs
  assign s_axis_tready  = ready_d;
  assign cfg_zy_o       = zy_q;
  assign cfg_lo_o       = lo_q;
  assign cfg_hi_o       = hi_q;
  assign cfg_mode_o     = mode_q;
  assign cfg_a_signed_o = asg_q;

  assign pw_en_o   = acc_d && (state_q == S_PARAM);
  assign pw_bank_o = tbank_q;
  assign pw_chan_o = idx_q;
  assign pw_word_o = sub_q;
  assign pw_data_o = word_d;

  assign ww_en_o    = acc_d && (state_q == S_WGT);
  assign ww_bank_o  = wbank_q;
  assign ww_row_o   = idx_q;
  assign ww_lanes_o = s_axis_tdata[COLS*8-1:0];

  assign av_valid_o = av_valid_q;
  assign av_lanes_o = av_lanes_q;
  assign av_mask_o  = av_mask_q;
  assign av_bank_o  = av_bank_q;
  assign av_tag_o   = av_tag_q;

  assign ts_en_o   = acc_d && (state_q == S_PARAM) && (idx_q == {IDX_BITS{1'b0}}) && (sub_q == 2'd0);
  assign ts_bank_o = tbank_q;
  assign ts_rows_o = pr_q;
  assign ts_cols_o = cc_q;
  assign ts_last_o = lastc_d && lastp_d;

  assign busy_o   = counting_q;
  assign err_o    = err_q;
  assign cycles_o = cyc_q;

endmodule

`default_nettype wire
