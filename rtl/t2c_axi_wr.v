// t2c_axi_wr: AXI4 write engine of the DMA: writes up to NSEG segments of whole words, read
// from a memory port with one cycle of latency, to memory.
//
// A task (start_i while busy_o is low) names per segment s a byte address A_s (aligned to
// DATA_W/8), a count of words W_s (0 skips the segment) and the beats per word K_s. Word w of
// segment s is read at rd_addr_o = w (every segment starts at word 0 of its own memory; the
// data of segment s arrives one cycle later on rd_data_i[s*KMAX*DATA_W +: KMAX*DATA_W]) and
// written as beats w*K_s .. w*K_s + K_s - 1 at A_s, A_s + BYTES, ..., low bits first (the layout
// t2c_axi_rd reads).
//
// AW: the segments' beats are cut into INCR bursts by t2c_axi_burst; an AW is presented while
// fewer than OUTSTANDING bursts are issued and not yet acknowledged (B), so AW runs ahead of W.
// W: one priming cycle presents word 0's address, then one beat per cycle while WREADY is high.
// rd_addr_o is combinational: it moves to the next word in the cycle whose handshake takes the
// current word's last beat, so the next word's data is there the cycle after (no bubble between
// words) and holds while WREADY is low (WDATA stays stable; WVALID never depends on WREADY).
// WLAST marks the last beat of each burst, cut the same way as AW.
//
// busy_o: AW or W still has beats of the task to send (the memory port is in use while W is);
// idle_o: not busy and every burst acknowledged. err_o: sticky since clr_i, a B response with
// BRESP != OKAY.
// One clocked process (reset last), as t2c_accel_top: few process wakes per cycle.
`timescale 1ns / 1ps
`default_nettype none

module t2c_axi_wr #(
  parameter integer ADDR_W      = 32,  // byte address width
  parameter integer DATA_W      = 64,  // AXI data width (power of two, 32..1024)
  parameter integer BURST_LEN   = 16,  // longest burst in beats (power of two, 1..256)
  parameter integer OUTSTANDING = 4,   // bursts in flight (AW issued, B not yet received; 1..15)
  parameter integer NSEG        = 2,   // segments per task (1..3)
  parameter integer KMAX        = 4    // most beats per word (1..255)
) (
  input  wire                     clk_i,
  input  wire                     rst_ni,        // synchronous, active low
  input  wire                     clr_i,         // clears err_o
  // task (sampled when start_i is accepted: busy_o low)
  input  wire                     start_i,
  input  wire [NSEG*ADDR_W-1:0]   seg_addr_i,
  input  wire [NSEG*32-1:0]       seg_words_i,
  input  wire [NSEG*8-1:0]        seg_k_i,
  output wire                     busy_o,
  output wire                     idle_o,
  output wire                     err_o,
  // memory read port: data one cycle after the address
  output wire [31:0]              rd_addr_o,
  input  wire [NSEG*KMAX*DATA_W-1:0] rd_data_i,
  // AXI4 write address / data / response channels (the rest is constant, driven by the parent)
  output wire [ADDR_W-1:0]        awaddr_o,
  output wire [7:0]               awlen_o,
  output wire                     awvalid_o,
  input  wire                     awready_i,
  output wire [DATA_W-1:0]        wdata_o,
  output wire                     wlast_o,
  output wire                     wvalid_o,
  input  wire                     wready_i,
  input  wire [1:0]               bresp_i,
  input  wire                     bvalid_i,
  output wire                     bready_o
);

  localparam integer BYTES = DATA_W / 8;
  localparam [1:0]   NONE  = 2'd3;
  localparam integer OW    = $clog2(OUTSTANDING + 1);
  localparam integer WW    = KMAX * DATA_W;

  initial begin
    if (NSEG < 1 || NSEG > 3) begin
      $fatal(1, "%m: NSEG=%0d must be in 1..3", NSEG);
    end
    if (OUTSTANDING < 1 || OUTSTANDING > 15) begin
      $fatal(1, "%m: OUTSTANDING=%0d must be in 1..15", OUTSTANDING);
    end
    if (KMAX < 1 || KMAX > 255) begin
      $fatal(1, "%m: KMAX=%0d must be in 1..255", KMAX);
    end
  end

  // ------------------------------------------------------------------------- task registers
  reg  [NSEG*ADDR_W-1:0] sa_q;
  reg  [NSEG*32-1:0]     sw_q;
  reg  [NSEG*8-1:0]      sk_q;
  reg  [NSEG*32-1:0]     sb_q;        // beats = words * K
  // AW side
  reg  [1:0]        aws_q;
  reg  [ADDR_W-1:0] awa_q;
  reg  [31:0]       awl_q;
  reg               awv_q;
  reg  [ADDR_W-1:0] awaddr_q;
  reg  [7:0]        awlen_q;
  reg  [OW-1:0]     out_q;            // bursts presented and not yet acknowledged
  // W side: segment, priming cycle, word, beat within the word, next beat's address, beats
  // left in the segment, beats left in the burst
  reg  [1:0]        ws_q;
  reg               wp_q;
  reg  [31:0]       ww_q;
  reg  [7:0]        wb_q;
  reg  [ADDR_W-1:0] wa_q;
  reg  [31:0]       wl_q;
  reg  [8:0]        wbl_q;
  reg               err_q;

  // ------------------------------------------------------------------------- next segments
  reg  [1:0]        first_seg, aw_next, w_next;
  reg  [NSEG*32-1:0] in_beats;
  integer           i;

  always @* begin
    first_seg = NONE;
    aw_next   = NONE;
    w_next    = NONE;
    for (i = NSEG - 1; i >= 0; i = i - 1) begin
      in_beats[i*32 +: 32] = seg_words_i[i*32 +: 32] * {24'd0, seg_k_i[i*8 +: 8]};
      if (seg_words_i[i*32 +: 32] != 32'd0) begin
        first_seg = i[1:0];
      end
      if (i[1:0] > aws_q && aws_q != NONE && sb_q[i*32 +: 32] != 32'd0) begin
        aw_next = i[1:0];
      end
      if (i[1:0] > ws_q && ws_q != NONE && sw_q[i*32 +: 32] != 32'd0) begin
        w_next = i[1:0];
      end
    end
  end

  // ------------------------------------------------------------------------- AW side
  wire [8:0]    aw_blen;
  wire          b_hs    = bvalid_i;                // BREADY is always high
  wire [OW-1:0] out_now = out_q - {{(OW-1){1'b0}}, b_hs};
  wire          aw_go   = (aws_q != NONE) && (!awv_q || awready_i)
                          && ({{(32-OW){1'b0}}, out_now} < OUTSTANDING);

  t2c_axi_burst #(.ADDR_W(ADDR_W), .DATA_W(DATA_W), .BURST_LEN(BURST_LEN)) u_aw_blen (
    .addr_i (awa_q),
    .left_i (awl_q),
    .len_o  (aw_blen)
  );

  // ------------------------------------------------------------------------- W side
  wire [1:0]  ws_idx  = (ws_q == NONE) ? 2'd0 : ws_q;
  wire        w_valid = (ws_q != NONE) && !wp_q;
  wire        w_hs    = w_valid && wready_i;
  wire        w_wlast = (wb_q == sk_q[ws_idx*8 +: 8] - 8'd1);          // last beat of a word
  wire        w_slast = w_wlast && (ww_q == sw_q[ws_idx*32 +: 32] - 32'd1); // of the segment
  wire [1:0]  wn_idx  = (w_next == NONE) ? 2'd0 : w_next;
  // length of the burst that starts with the next beat: at the priming cycle the segment's
  // first, at a segment's end the next segment's first, else the beat after this one
  reg  [ADDR_W-1:0] wbl_addr;
  reg  [31:0]       wbl_left;
  wire [8:0]        w_blen;

  always @* begin
    if (wp_q) begin
      wbl_addr = wa_q;
      wbl_left = wl_q;
    end else if (w_slast) begin
      wbl_addr = sa_q[wn_idx*ADDR_W +: ADDR_W];
      wbl_left = (w_next == NONE) ? 32'd0 : sb_q[wn_idx*32 +: 32];
    end else begin
      wbl_addr = wa_q + BYTES[ADDR_W-1:0];
      wbl_left = wl_q - 32'd1;
    end
  end

  t2c_axi_burst #(.ADDR_W(ADDR_W), .DATA_W(DATA_W), .BURST_LEN(BURST_LEN)) u_w_blen (
    .addr_i (wbl_addr),
    .left_i (wbl_left),
    .len_o  (w_blen)
  );

  // the word read next: moves on with the handshake of a word's last beat
  assign rd_addr_o = (w_hs && w_wlast) ? (w_slast ? 32'd0 : ww_q + 32'd1) : ww_q;

  always @(posedge clk_i) begin
    if (clr_i) begin
      err_q <= 1'b0;
    end

    // AW
    if (aw_go) begin
      awv_q    <= 1'b1;
      awaddr_q <= awa_q;
      awlen_q  <= aw_blen[7:0] - 8'd1;
      if (awl_q == {23'd0, aw_blen}) begin
        aws_q <= aw_next;
        if (aw_next != NONE) begin
          awa_q <= sa_q[aw_next*ADDR_W +: ADDR_W];
          awl_q <= sb_q[aw_next*32 +: 32];
        end
      end else begin
        awa_q <= awa_q + {{(ADDR_W-9){1'b0}}, aw_blen} * BYTES[ADDR_W-1:0];
        awl_q <= awl_q - {23'd0, aw_blen};
      end
    end else if (awv_q && awready_i) begin
      awv_q <= 1'b0;
    end
    out_q <= out_now + {{(OW-1){1'b0}}, aw_go};
    if (b_hs && bresp_i != 2'b00) begin
      err_q <= 1'b1;
    end

    // W
    if (wp_q) begin
      wp_q  <= 1'b0;
      wbl_q <= w_blen;
    end else if (w_hs) begin
      if (w_slast) begin
        ws_q  <= w_next;
        ww_q  <= 32'd0;
        wb_q  <= 8'd0;
        wa_q  <= sa_q[wn_idx*ADDR_W +: ADDR_W];
        wl_q  <= sb_q[wn_idx*32 +: 32];
        wbl_q <= w_blen;
      end else begin
        wa_q  <= wa_q + BYTES[ADDR_W-1:0];
        wl_q  <= wl_q - 32'd1;
        wbl_q <= (wbl_q == 9'd1) ? w_blen : wbl_q - 9'd1;
        if (w_wlast) begin
          wb_q <= 8'd0;
          ww_q <= ww_q + 32'd1;
        end else begin
          wb_q <= wb_q + 8'd1;
        end
      end
    end

    // a new task
    if (start_i && !busy_o) begin
      sa_q  <= seg_addr_i;
      sw_q  <= seg_words_i;
      sk_q  <= seg_k_i;
      sb_q  <= in_beats;
      aws_q <= first_seg;
      ws_q  <= first_seg;
      wp_q  <= (first_seg != NONE);
      ww_q  <= 32'd0;
      wb_q  <= 8'd0;
      if (first_seg != NONE) begin
        awa_q <= seg_addr_i[first_seg*ADDR_W +: ADDR_W];
        awl_q <= in_beats[first_seg*32 +: 32];
        wa_q  <= seg_addr_i[first_seg*ADDR_W +: ADDR_W];
        wl_q  <= in_beats[first_seg*32 +: 32];
      end
    end

    if (!rst_ni) begin
      aws_q <= NONE;  ws_q <= NONE;  wp_q <= 1'b0;  awv_q <= 1'b0;  out_q <= {OW{1'b0}};
      err_q <= 1'b0;
    end
  end

  wire [WW-1:0] w_word = rd_data_i[ws_idx*WW +: WW];

  assign busy_o    = (aws_q != NONE) || (ws_q != NONE);
  assign idle_o    = !busy_o && (out_q == {OW{1'b0}});
  assign err_o     = err_q;
  assign awaddr_o  = awaddr_q;
  assign awlen_o   = awlen_q;
  assign awvalid_o = awv_q;
  assign wdata_o   = w_word[wb_q * DATA_W +: DATA_W];
  assign wlast_o   = (wbl_q == 9'd1);
  assign wvalid_o  = w_valid;
  assign bready_o  = 1'b1;

endmodule

`default_nettype wire
