// t2c_axi_rd: AXI4 read engine of the DMA: reads up to NSEG contiguous segments of whole words
// from memory and hands out one word per cycle.
//
// A task (start_i while idle) names per segment s a byte address A_s (aligned to DATA_W/8), a
// count of words W_s (0 skips the segment) and the beats per word K_s (1..KMAX). Segment s holds
// W_s * K_s beats at A_s, A_s + BYTES, ...; word w of segment s is beats w*K_s .. w*K_s + K_s - 1,
// the first beat in the word's least significant bits:
//
//   word[b*DATA_W +: DATA_W] = beat w*K_s + b         (little-endian, bits above the word unused)
//
// The segments are read in order as INCR bursts cut by t2c_axi_burst (at most BURST_LEN beats,
// ending at multiples of BURST_LEN*BYTES). Up to OUTSTANDING bursts are in flight: an AR is
// presented while fewer than OUTSTANDING bursts are issued and not yet complete (RLAST), so a
// slave with enough read queue streams a whole task back to back. RREADY is always high: every
// beat is taken the cycle it is valid, and the word of its last beat appears on we_o/wseg_o/
// waddr_o/wdata_o the next cycle (waddr_o = word index within its segment).
//
// Timing (ARREADY high whenever presented): the first AR is presented the cycle after start_i,
// AR k is presented at edge c_k = max(c_{k-1} + 1, e_{k-OUTSTANDING}) (e_j: the edge that takes
// burst j's RLAST beat); busy_o falls at the edge that takes the task's last beat, when that
// beat's word is on we_o. t2c_sim.estimate.frontdoor replays this burst by burst.
//
// err_o: sticky since clr_i: a beat arrived with RRESP != OKAY. Its data is
// still delivered; the sequencer decides what to do with it.
// One clocked process (reset last), as t2c_accel_top: few process wakes per cycle.
`timescale 1ns / 1ps
`default_nettype none

module t2c_axi_rd #(
  parameter integer ADDR_W      = 32,  // byte address width
  parameter integer DATA_W      = 64,  // AXI data width (power of two, 32..1024)
  parameter integer BURST_LEN   = 16,  // longest burst in beats (power of two, 1..256)
  parameter integer OUTSTANDING = 4,   // bursts in flight (1..15)
  parameter integer NSEG        = 3,   // segments per task (1..3)
  parameter integer KMAX        = 4    // most beats per word (1..255)
) (
  input  wire                     clk_i,
  input  wire                     rst_ni,        // synchronous, active low
  input  wire                     clr_i,         // clears err_o
  // task (sampled when start_i is accepted: busy_o low)
  input  wire                     start_i,
  input  wire [NSEG*ADDR_W-1:0]   seg_addr_i,    // segment s at [s*ADDR_W +: ADDR_W]
  input  wire [NSEG*32-1:0]       seg_words_i,
  input  wire [NSEG*8-1:0]        seg_k_i,
  output wire                     busy_o,
  output wire                     err_o,
  // one whole word per cycle
  output reg                      we_o,
  output reg  [1:0]               wseg_o,
  output reg  [31:0]              waddr_o,
  output reg  [KMAX*DATA_W-1:0]   wdata_o,
  // AXI4 read address / data channels (the rest of AR is constant, driven by the parent)
  output wire [ADDR_W-1:0]        araddr_o,
  output wire [7:0]               arlen_o,
  output wire                     arvalid_o,
  input  wire                     arready_i,
  input  wire [DATA_W-1:0]        rdata_i,
  input  wire [1:0]               rresp_i,
  input  wire                     rlast_i,
  input  wire                     rvalid_i,
  output wire                     rready_o
);

  localparam integer BYTES = DATA_W / 8;
  localparam [1:0]   NONE  = 2'd3;  // no segment (idle)
  localparam integer OW    = $clog2(OUTSTANDING + 1);

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
  // (flat vectors, segment s at [s*W +: W]: Icarus warns on arrays read in always @*)
  reg  [NSEG*ADDR_W-1:0] sa_q;
  reg  [NSEG*32-1:0]     sw_q;
  reg  [NSEG*8-1:0]      sk_q;
  reg  [NSEG*32-1:0]     sb_q;        // beats = words * K
  // AR side: segment, next byte address, beats left in the segment; the presented AR
  reg  [1:0]        ars_q;
  reg  [ADDR_W-1:0] ara_q;
  reg  [31:0]       arl_q;
  reg               arv_q;
  reg  [ADDR_W-1:0] araddr_q;
  reg  [7:0]        arlen_q;
  reg  [OW-1:0]     out_q;            // bursts presented and not yet complete
  // R side: segment, word, beat within the word, the word being assembled
  reg  [1:0]        rs_q;
  reg  [31:0]       rw_q;
  reg  [7:0]        rb_q;
  reg  [KMAX*DATA_W-1:0] asm_q;
  reg               err_q;

  // ------------------------------------------------------------------------- next segments
  // first non-empty segment of the task at start_i, and the non-empty segment after ars_q / rs_q
  reg  [1:0]         first_seg, ar_next, r_next;
  reg  [NSEG*32-1:0]  in_beats;
  integer             i;

  always @* begin
    first_seg = NONE;
    ar_next   = NONE;
    r_next    = NONE;
    for (i = NSEG - 1; i >= 0; i = i - 1) begin
      in_beats[i*32 +: 32] = seg_words_i[i*32 +: 32] * {24'd0, seg_k_i[i*8 +: 8]};
      if (seg_words_i[i*32 +: 32] != 32'd0) begin
        first_seg = i[1:0];
      end
      if (i[1:0] > ars_q && ars_q != NONE && sb_q[i*32 +: 32] != 32'd0) begin
        ar_next = i[1:0];
      end
      if (i[1:0] > rs_q && rs_q != NONE && sw_q[i*32 +: 32] != 32'd0) begin
        r_next = i[1:0];
      end
    end
  end

  // ------------------------------------------------------------------------- AR side
  wire [8:0] blen;
  wire       r_hs   = rvalid_i;                    // RREADY is always high
  wire       r_done = r_hs && rlast_i;             // a burst completes
  wire [OW-1:0] out_now = out_q - {{(OW-1){1'b0}}, r_done};
  wire       ar_go  = (ars_q != NONE) && (!arv_q || arready_i)
                      && ({{(32-OW){1'b0}}, out_now} < OUTSTANDING);

  t2c_axi_burst #(.ADDR_W(ADDR_W), .DATA_W(DATA_W), .BURST_LEN(BURST_LEN)) u_blen (
    .addr_i (ara_q),
    .left_i (arl_q),
    .len_o  (blen)
  );

  // ------------------------------------------------------------------------- R side
  wire              r_take  = r_hs && (rs_q != NONE);
  wire [1:0]        rs_idx  = (rs_q == NONE) ? 2'd0 : rs_q;
  wire              r_wlast = (rb_q == sk_q[rs_idx*8 +: 8] - 8'd1);
  wire              r_slast = r_wlast && (rw_q == sw_q[rs_idx*32 +: 32] - 32'd1);
  reg  [KMAX*DATA_W-1:0] asm_d;

  always @* begin
    asm_d = asm_q;
    asm_d[rb_q * DATA_W +: DATA_W] = rdata_i;
  end

  always @(posedge clk_i) begin
    we_o <= 1'b0;
    if (clr_i) begin
      err_q <= 1'b0;
    end

    // AR: present the next burst of the task, or drop ARVALID after its handshake
    if (ar_go) begin
      arv_q    <= 1'b1;
      araddr_q <= ara_q;
      arlen_q  <= blen[7:0] - 8'd1;
      if (arl_q == {23'd0, blen}) begin
        ars_q <= ar_next;
        if (ar_next != NONE) begin
          ara_q <= sa_q[ar_next*ADDR_W +: ADDR_W];
          arl_q <= sb_q[ar_next*32 +: 32];
        end
      end else begin
        ara_q <= ara_q + {{(ADDR_W-9){1'b0}}, blen} * BYTES[ADDR_W-1:0];
        arl_q <= arl_q - {23'd0, blen};
      end
    end else if (arv_q && arready_i) begin
      arv_q <= 1'b0;
    end
    out_q <= out_now + {{(OW-1){1'b0}}, ar_go};

    // R: assemble words, hand out each complete word
    if (r_take) begin
      if (rresp_i != 2'b00) begin
        err_q <= 1'b1;
      end
      if (r_wlast) begin
        we_o    <= 1'b1;
        wseg_o  <= rs_q;
        waddr_o <= rw_q;
        wdata_o <= asm_d;
        rb_q    <= 8'd0;
        if (r_slast) begin
          rs_q <= r_next;
          rw_q <= 32'd0;
        end else begin
          rw_q <= rw_q + 32'd1;
        end
      end else begin
        asm_q <= asm_d;
        rb_q  <= rb_q + 8'd1;
      end
    end

    // a new task
    if (start_i && rs_q == NONE) begin
      sa_q <= seg_addr_i;
      sw_q <= seg_words_i;
      sk_q <= seg_k_i;
      sb_q <= in_beats;
      ars_q <= first_seg;
      rs_q  <= first_seg;
      rw_q  <= 32'd0;
      rb_q  <= 8'd0;
      if (first_seg != NONE) begin
        ara_q <= seg_addr_i[first_seg*ADDR_W +: ADDR_W];
        arl_q <= in_beats[first_seg*32 +: 32];
      end
    end

    if (!rst_ni) begin
      ars_q <= NONE;  rs_q <= NONE;  arv_q <= 1'b0;  out_q <= {OW{1'b0}};
      we_o <= 1'b0;  err_q <= 1'b0;
    end
  end

  assign busy_o    = (rs_q != NONE);
  assign err_o     = err_q;
  assign araddr_o  = araddr_q;
  assign arlen_o   = arlen_q;
  assign arvalid_o = arv_q;
  assign rready_o  = 1'b1;

endmodule

`default_nettype wire
