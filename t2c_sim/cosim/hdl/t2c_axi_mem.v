// t2c_axi_mem: AXI4 slave memory model for simulation: deterministic latencies, bulk loaded.
//
// The memory is mem_q[0 .. MEM_WORDS-1] of DATA_W-bit beats (byte address a holds beat
// a / BYTES); a harness fills it with $readmemh and dumps it with $writememh by hierarchical
// name, so no Python runs per beat. Timing, with the edges of clk_i numbered:
//
//   read:  an AR taken at edge e is queued (ARREADY: fewer than QDEPTH bursts queued); its first
//          beat is valid from edge max(e + RD_LAT, l) on, l the edge that takes the previous
//          burst's last beat, then one beat per cycle while RREADY is high (back to back between
//          bursts). So with RREADY high the first beat is taken at edge e + RD_LAT + 1.
//   write: an AW taken at edge e is queued (AWREADY: fewer than QDEPTH bursts queued or awaiting
//          their response); WREADY is high while a queued burst expects data (from the cycle
//          after its AW), one beat per cycle; the response of a burst whose last beat is taken
//          at edge l is valid from edge l + WR_LAT on, in order, one per cycle.
//
// RD_LAT and WR_LAT are at least 1. Checks (each counted in prot_err_o, and the burst answered
// with SLVERR): burst type not INCR, size not DATA_W, more than MAX_BURST beats, a 4 KB
// boundary crossed, beats beyond the memory, WLAST not on the burst's last beat; err_addr_o
// holds the start address of the last burst that failed one. A burst that overlaps the byte
// window [err_lo_i, err_hi_i) answers SLVERR without other effect (fault injection; an SLVERR
// write does not change the memory). rd_beats_o / wr_beats_o count beats. Responses come in
// order, each with the ID of its burst (RID, BID echo ARID, AWID; ID_W bits).
//
// The one AXI4 memory model of t2c-sim: the front door's exact cycle model
// (t2c_sim/estimate/frontdoor.py) and every axi-profile DUT (t2c_sim/cosim/profiles) use it.
`timescale 1ns / 1ps
`default_nettype none

module t2c_axi_mem #(
  parameter integer ADDR_W    = 32,     // byte address width of the AXI port
  parameter integer DATA_W    = 64,     // beat width (power of two, 32..1024)
  parameter integer MEM_WORDS = 65536,  // beats of storage
  parameter integer RD_LAT    = 4,      // AR handshake to first RVALID, cycles (>= 1)
  parameter integer WR_LAT    = 4,      // last W handshake to BVALID, cycles (>= 1)
  parameter integer MAX_BURST = 256,    // longest legal burst (1..256)
  parameter integer QDEPTH    = 16,     // bursts queued per direction (1..64)
  parameter integer ID_W      = 1       // ID width (IDs echoed in order)
) (
  input  wire                 clk_i,
  input  wire                 rst_ni,
  input  wire [ID_W-1:0]      s_axi_arid,
  input  wire [ADDR_W-1:0]    s_axi_araddr,
  input  wire [7:0]           s_axi_arlen,
  input  wire [2:0]           s_axi_arsize,
  input  wire [1:0]           s_axi_arburst,
  input  wire                 s_axi_arvalid,
  output wire                 s_axi_arready,
  output wire [ID_W-1:0]      s_axi_rid,
  output wire [DATA_W-1:0]    s_axi_rdata,
  output wire [1:0]           s_axi_rresp,
  output wire                 s_axi_rlast,
  output wire                 s_axi_rvalid,
  input  wire                 s_axi_rready,
  input  wire [ID_W-1:0]      s_axi_awid,
  input  wire [ADDR_W-1:0]    s_axi_awaddr,
  input  wire [7:0]           s_axi_awlen,
  input  wire [2:0]           s_axi_awsize,
  input  wire [1:0]           s_axi_awburst,
  input  wire                 s_axi_awvalid,
  output wire                 s_axi_awready,
  input  wire [DATA_W-1:0]    s_axi_wdata,
  input  wire [DATA_W/8-1:0]  s_axi_wstrb,
  input  wire                 s_axi_wlast,
  input  wire                 s_axi_wvalid,
  output wire                 s_axi_wready,
  output wire [ID_W-1:0]      s_axi_bid,
  output wire [1:0]           s_axi_bresp,
  output wire                 s_axi_bvalid,
  input  wire                 s_axi_bready,
  input  wire [ADDR_W-1:0]    err_lo_i,      // SLVERR window [lo, hi) (lo >= hi: none)
  input  wire [ADDR_W-1:0]    err_hi_i,
  output wire [31:0]          prot_err_o,
  output reg  [ADDR_W-1:0]    err_addr_o,    // start address of the last burst that broke a rule
  output wire [31:0]          rd_beats_o,
  output wire [31:0]          wr_beats_o
);

  localparam integer BYTES = DATA_W / 8;
  localparam integer SZ    = $clog2(BYTES);
  localparam integer QW    = $clog2(QDEPTH + 1);
  localparam integer QI    = (QDEPTH > 1) ? $clog2(QDEPTH) : 1;
  localparam [QW:0]  QFULL = QDEPTH[QW:0];
  localparam [63:0]  WORDS_L = {32'd0, MEM_WORDS[31:0]};

  initial begin
    if (RD_LAT < 1 || WR_LAT < 1) begin
      $fatal(1, "%m: RD_LAT=%0d and WR_LAT=%0d must be >= 1", RD_LAT, WR_LAT);
    end
    if (MAX_BURST < 1 || MAX_BURST > 256) begin
      $fatal(1, "%m: MAX_BURST=%0d must be in 1..256", MAX_BURST);
    end
    if (QDEPTH < 1 || QDEPTH > 64 || (QDEPTH & (QDEPTH - 1)) != 0) begin
      $fatal(1, "%m: QDEPTH=%0d must be a power of two in 1..64", QDEPTH);
    end
    if (DATA_W < 32 || DATA_W > 1024 || (DATA_W & (DATA_W - 1)) != 0) begin
      $fatal(1, "%m: DATA_W=%0d must be a power of two in 32..1024", DATA_W);
    end
  end

  reg [DATA_W-1:0] mem_q [0:MEM_WORDS-1];
  reg [31:0]       cyc_q, rprot_q, wprot_q, rbeats_q, wbeats_q;

  // a burst's checks: protocol (counted) and the fault-injection window
  function burst_bad(input [ADDR_W-1:0] a, input [7:0] len, input [2:0] size, input [1:0] bt);
    reg [63:0] last, beat;
    begin
      last = {{(64-ADDR_W){1'b0}}, a} + ({56'd0, len} + 64'd1) * BYTES - 64'd1;
      beat = {{(64-ADDR_W){1'b0}}, a} >> SZ;
      burst_bad = (bt != 2'b01) || (size != SZ[2:0]) || ({24'd0, len} >= MAX_BURST)
                  || ((last >> 12) != ({{(64-ADDR_W){1'b0}}, a} >> 12))   // 4 KB crossed
                  || (a[SZ-1:0] != {SZ{1'b0}})
                  || (beat + {56'd0, len} >= WORDS_L);
    end
  endfunction

  function in_window(input [ADDR_W-1:0] a, input [7:0] len);
    reg [63:0] lo, hi;
    begin
      lo = {{(64-ADDR_W){1'b0}}, a};
      hi = lo + ({56'd0, len} + 64'd1) * BYTES;
      in_window = (err_lo_i < err_hi_i) && (lo < {{(64-ADDR_W){1'b0}}, err_hi_i})
                  && (hi > {{(64-ADDR_W){1'b0}}, err_lo_i});
    end
  endfunction

  // ------------------------------------------------------------------------- read
  reg [31:0] rq_addr [0:QDEPTH-1];   // beat index
  reg [7:0]  rq_len  [0:QDEPTH-1];
  reg [31:0] rq_t    [0:QDEPTH-1];   // earliest edge (cyc_q before it) to raise RVALID
  reg        rq_err  [0:QDEPTH-1];
  reg [ID_W-1:0] rq_id [0:QDEPTH-1];
  reg [ID_W-1:0] rid_q;
  reg [QI-1:0] rq_hd_q, rq_tl_q;
  reg [QW-1:0] rq_n_q;
  reg        rv_q, rl_q, re_q;
  reg [DATA_W-1:0] rd_q;
  reg [31:0] ra_q;                   // next beat index of the burst being served
  reg [7:0]  rleft_q;                // beats left after the one on the bus

  wire rq_room = ({1'b0, rq_n_q} < QFULL);
  wire ar_hs   = s_axi_arvalid && rq_room;
  wire r_hs    = rv_q && s_axi_rready;
  wire rq_rdy  = (rq_n_q != {QW{1'b0}}) && (cyc_q >= rq_t[rq_hd_q]);
  wire r_next  = (!rv_q || (r_hs && rl_q)) && rq_rdy;   // start the head burst at this edge

  always @(posedge clk_i) begin
    cyc_q <= cyc_q + 32'd1;
    if (ar_hs) begin
      rq_addr[rq_tl_q] <= {{(32-ADDR_W+SZ){1'b0}}, s_axi_araddr[ADDR_W-1:SZ]};
      rq_len[rq_tl_q]  <= s_axi_arlen;
      rq_id[rq_tl_q]   <= s_axi_arid;
      rq_t[rq_tl_q]    <= cyc_q + RD_LAT;
      rq_err[rq_tl_q]  <= burst_bad(s_axi_araddr, s_axi_arlen, s_axi_arsize, s_axi_arburst)
                          || in_window(s_axi_araddr, s_axi_arlen);
      if (burst_bad(s_axi_araddr, s_axi_arlen, s_axi_arsize, s_axi_arburst)) begin
        rprot_q <= rprot_q + 32'd1;
      end
      rq_tl_q <= rq_tl_q + 1'b1;
    end
    if (r_hs) begin
      rbeats_q <= rbeats_q + 32'd1;
    end
    if (r_next) begin
      rv_q    <= 1'b1;
      rd_q    <= mem_q[rq_addr[rq_hd_q] % MEM_WORDS];
      re_q    <= rq_err[rq_hd_q];
      rid_q   <= rq_id[rq_hd_q];
      rl_q    <= (rq_len[rq_hd_q] == 8'd0);
      ra_q    <= rq_addr[rq_hd_q] + 32'd1;
      rleft_q <= rq_len[rq_hd_q];
      rq_hd_q <= rq_hd_q + 1'b1;
    end else if (r_hs) begin
      if (rl_q) begin
        rv_q <= 1'b0;
      end else begin
        rd_q    <= mem_q[ra_q % MEM_WORDS];
        ra_q    <= ra_q + 32'd1;
        rl_q    <= (rleft_q == 8'd1);
        rleft_q <= rleft_q - 8'd1;
      end
    end
    rq_n_q <= rq_n_q + {{(QW-1){1'b0}}, ar_hs} - {{(QW-1){1'b0}}, r_next};
    if (!rst_ni) begin
      cyc_q <= 32'd0;  rv_q <= 1'b0;  rq_hd_q <= {QI{1'b0}};  rq_tl_q <= {QI{1'b0}};
      rq_n_q <= {QW{1'b0}};  rprot_q <= 32'd0;  rbeats_q <= 32'd0;
    end
  end

  // ------------------------------------------------------------------------- write
  reg [31:0] wq_addr [0:QDEPTH-1];
  reg [7:0]  wq_len  [0:QDEPTH-1];
  reg        wq_err  [0:QDEPTH-1];
  reg [ID_W-1:0] wq_id [0:QDEPTH-1];
  reg [ID_W-1:0] bq_id [0:QDEPTH-1];
  reg [ID_W-1:0] bid_q;
  reg [QI-1:0] wq_hd_q, wq_tl_q;
  reg [QW-1:0] wq_n_q;
  reg [7:0]  wcnt_q;                 // beats of the head burst taken so far
  reg [31:0] bq_t    [0:QDEPTH-1];
  reg        bq_err  [0:QDEPTH-1];
  reg [QI-1:0] bq_hd_q, bq_tl_q;
  reg [QW-1:0] bq_n_q;
  reg        bv_q, be_q;
  integer    k;

  wire [QW:0] w_pending = {1'b0, wq_n_q} + {1'b0, bq_n_q};
  wire aw_room = (w_pending < QFULL);
  wire aw_hs  = s_axi_awvalid && aw_room;
  wire w_rdy  = (wq_n_q != {QW{1'b0}});
  wire w_hs   = s_axi_wvalid && w_rdy;
  wire w_end  = w_hs && (wcnt_q == wq_len[wq_hd_q]);
  wire b_hs   = bv_q && s_axi_bready;
  wire b_next = (!bv_q || b_hs) && (bq_n_q != {QW{1'b0}}) && (cyc_q >= bq_t[bq_hd_q]);
  wire [31:0] w_beat = wq_addr[wq_hd_q] + {24'd0, wcnt_q};

  always @(posedge clk_i) begin
    if (aw_hs) begin
      wq_addr[wq_tl_q] <= {{(32-ADDR_W+SZ){1'b0}}, s_axi_awaddr[ADDR_W-1:SZ]};
      wq_len[wq_tl_q]  <= s_axi_awlen;
      wq_id[wq_tl_q]   <= s_axi_awid;
      wq_err[wq_tl_q]  <= burst_bad(s_axi_awaddr, s_axi_awlen, s_axi_awsize, s_axi_awburst)
                          || in_window(s_axi_awaddr, s_axi_awlen);
      wq_tl_q <= wq_tl_q + 1'b1;
    end
    wprot_q <= wprot_q
               + {31'd0, aw_hs && burst_bad(s_axi_awaddr, s_axi_awlen, s_axi_awsize, s_axi_awburst)}
               + {31'd0, w_hs && (s_axi_wlast != w_end)};
    if (w_hs) begin
      wbeats_q <= wbeats_q + 32'd1;
      if (!wq_err[wq_hd_q]) begin
        for (k = 0; k < BYTES; k = k + 1) begin
          if (s_axi_wstrb[k]) begin
            mem_q[w_beat % MEM_WORDS][k*8 +: 8] <= s_axi_wdata[k*8 +: 8];
          end
        end
      end
      if (w_end) begin
        wcnt_q  <= 8'd0;
        wq_hd_q <= wq_hd_q + 1'b1;
        bq_t[bq_tl_q]   <= cyc_q + WR_LAT;
        bq_err[bq_tl_q] <= wq_err[wq_hd_q] || (s_axi_wlast != w_end);
        bq_id[bq_tl_q]  <= wq_id[wq_hd_q];
        bq_tl_q <= bq_tl_q + 1'b1;
      end else begin
        wcnt_q <= wcnt_q + 8'd1;
      end
    end
    if (b_next) begin
      bv_q    <= 1'b1;
      be_q    <= bq_err[bq_hd_q];
      bid_q   <= bq_id[bq_hd_q];
      bq_hd_q <= bq_hd_q + 1'b1;
    end else if (b_hs) begin
      bv_q <= 1'b0;
    end
    wq_n_q <= wq_n_q + {{(QW-1){1'b0}}, aw_hs} - {{(QW-1){1'b0}}, w_end};
    bq_n_q <= bq_n_q + {{(QW-1){1'b0}}, w_end} - {{(QW-1){1'b0}}, b_next};
    if (!rst_ni) begin
      wq_hd_q <= {QI{1'b0}};  wq_tl_q <= {QI{1'b0}};  wq_n_q <= {QW{1'b0}};  wcnt_q <= 8'd0;
      bq_hd_q <= {QI{1'b0}};  bq_tl_q <= {QI{1'b0}};  bq_n_q <= {QW{1'b0}};  bv_q <= 1'b0;
      wbeats_q <= 32'd0;  wprot_q <= 32'd0;
    end
  end

  // the start address of the last burst that broke a rule (a WLAST error: that beat's address)
  /* verilator lint_off UNUSEDSIGNAL */ // the bits above ADDR_W
  wire [63:0] w_beat_addr = {32'd0, w_beat} << SZ;
  /* verilator lint_on UNUSEDSIGNAL */
  always @(posedge clk_i) begin
    if (!rst_ni) begin
      err_addr_o <= {ADDR_W{1'b0}};
    end else if (ar_hs && burst_bad(s_axi_araddr, s_axi_arlen, s_axi_arsize, s_axi_arburst)) begin
      err_addr_o <= s_axi_araddr;
    end else if (aw_hs && burst_bad(s_axi_awaddr, s_axi_awlen, s_axi_awsize, s_axi_awburst)) begin
      err_addr_o <= s_axi_awaddr;
    end else if (w_hs && (s_axi_wlast != w_end)) begin
      err_addr_o <= w_beat_addr[ADDR_W-1:0];
    end
  end

  assign s_axi_arready = rq_room;
  assign s_axi_rvalid  = rv_q;
  assign s_axi_rdata   = rd_q;
  assign s_axi_rresp   = re_q ? 2'b10 : 2'b00;
  assign s_axi_rid     = rid_q;
  assign s_axi_bid     = bid_q;
  assign s_axi_rlast   = rl_q;
  assign s_axi_awready = aw_room;
  assign s_axi_wready  = w_rdy;
  assign s_axi_bvalid  = bv_q;
  assign s_axi_bresp   = be_q ? 2'b10 : 2'b00;
  assign prot_err_o    = rprot_q + wprot_q;
  assign rd_beats_o    = rbeats_q;
  assign wr_beats_o    = wbeats_q;

endmodule

`default_nettype wire
