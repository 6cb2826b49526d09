// t2c_axi_harness: simulation-only wrapper of the front door t2c_axi_accel with a memory model.
//
// The accelerator's AXI4 master port is wired to t2c_axi_mem (latencies RD_LAT / WR_LAT, at most
// MAX_BURST beats per burst, QDEPTH bursts queued per direction); its AXI4-Lite port and irq_o
// are harness signals that the cocotb module (t2c_sim/cosim/tb_axi_frontdoor.py) drives with
// cocotbext-axi's AxiLiteMaster. The clock is generated in HDL (10 ns period), so no Python runs
// per cycle, and no Python touches a memory beat:
//
//   mem_words.hex   one 32-bit word: the number of beats in mem.hex
//   mem.hex         the memory image (descriptors, operands; DATA_W bits per line, beat 0 first),
//                   loaded with $readmemh at time 0
//   out<id>.hex     written with $writememh when dump_go rises: beats dump_lo .. dump_hi
//                   (id = dump_id)
//   tiles.txt       one line "run err cycles" per core run, as the back-door harness writes it
//                   (run = run_base + the command's jobs completed before it)
//
// Front-door cycle measurement: meas_cyc counts the clock edges from the edge that completes the
// first AXI4-Lite write (AWVALID && AWREADY) after meas_arm is raised to the edge after which
// irq_o is high (both edges excluded / included so that the count is their distance).
`timescale 1ns / 1ps
`default_nettype none
// Simulation-only: registers start from declared values and cocotb drives the bus signals.
/* verilator lint_off PROCASSINIT */
/* verilator lint_off UNUSEDSIGNAL */

module t2c_axi_harness #(
  parameter integer ROWS        = 4,
  parameter integer COLS        = 4,
  parameter integer N           = 2,
  parameter integer M           = 4,
  parameter integer A_BITS      = 8,
  parameter integer W_BITS      = 8,
  parameter integer ACC_BITS    = 32,
  parameter integer MULT_BITS   = 32,
  parameter integer SHIFT_MAX   = 63,
  parameter integer ACT_DEPTH   = 4096,
  parameter integer W_DEPTH     = 4096,
  parameter integer OUT_DEPTH   = 4096,
  parameter integer CH_DEPTH    = 256,
  parameter integer PACKED      = 0,
  parameter integer PROFILES    = 1,      // build features of t2c_accel_top
  parameter integer ROW_PARAMS  = 1,
  parameter integer ZERO_POINTS = 1,
  parameter integer DATA_W      = 64,     // AXI4 data width
  parameter integer BURST_LEN   = 16,     // the DMA's longest burst
  parameter integer OUTSTANDING = 4,      // the DMA's bursts in flight per direction
  parameter integer MEM_WORDS   = 65536,  // memory beats
  parameter integer RD_LAT      = 4,      // memory read latency (AR handshake to first RVALID)
  parameter integer WR_LAT      = 4,      // memory write response latency (last W to BVALID)
  parameter integer MAX_BURST   = 256,    // the memory's longest legal burst
  parameter integer QDEPTH      = 16,     // the memory's queued bursts per direction
  parameter integer Y_BITS      = 16      // output width (t2c_sim.export.iface.Y_BITS)
) ();

  localparam integer LA_W   = 8;   // AXI4-Lite address width
  localparam integer ADDR_W = 32;

  // Signals the cocotb module touches are the only VPI-visible ones on Verilator.
  reg         clk /*verilator public_flat_rw*/ = 1'b0;
  always #5 clk = ~clk;
  reg         rst_n /*verilator public_flat_rw*/ = 1'b0;

  // AXI4-Lite, driven by cocotbext-axi's AxiLiteMaster
  reg  [LA_W-1:0] s_axil_awaddr /*verilator public_flat_rw*/ = {LA_W{1'b0}};
  reg             s_axil_awvalid /*verilator public_flat_rw*/ = 1'b0;
  wire            s_axil_awready /*verilator public_flat_rw*/;
  reg  [31:0]     s_axil_wdata /*verilator public_flat_rw*/ = 32'd0;
  reg  [3:0]      s_axil_wstrb /*verilator public_flat_rw*/ = 4'd0;
  reg             s_axil_wvalid /*verilator public_flat_rw*/ = 1'b0;
  wire            s_axil_wready /*verilator public_flat_rw*/;
  wire [1:0]      s_axil_bresp /*verilator public_flat_rw*/;
  wire            s_axil_bvalid /*verilator public_flat_rw*/;
  reg             s_axil_bready /*verilator public_flat_rw*/ = 1'b0;
  reg  [LA_W-1:0] s_axil_araddr /*verilator public_flat_rw*/ = {LA_W{1'b0}};
  reg             s_axil_arvalid /*verilator public_flat_rw*/ = 1'b0;
  wire            s_axil_arready /*verilator public_flat_rw*/;
  wire [31:0]     s_axil_rdata /*verilator public_flat_rw*/;
  wire [1:0]      s_axil_rresp /*verilator public_flat_rw*/;
  wire            s_axil_rvalid /*verilator public_flat_rw*/;
  reg             s_axil_rready /*verilator public_flat_rw*/ = 1'b0;
  wire            irq /*verilator public_flat_rw*/;

  // harness controls and observations
  reg  [31:0] err_lo /*verilator public_flat_rw*/ = 32'd0;   // memory SLVERR window
  reg  [31:0] err_hi /*verilator public_flat_rw*/ = 32'd0;
  reg  [31:0] dump_lo /*verilator public_flat_rw*/ = 32'd0;
  reg  [31:0] dump_hi /*verilator public_flat_rw*/ = 32'd0;
  reg         dump_go /*verilator public_flat_rw*/ = 1'b0;
  reg  [31:0] dump_id /*verilator public_flat_rw*/ = 32'd0;
  reg  [31:0] run_base /*verilator public_flat_rw*/ = 32'd0;
  reg         meas_arm /*verilator public_flat_rw*/ = 1'b0;
  reg         meas_on /*verilator public_flat_rw*/ = 1'b0;
  reg  [31:0] meas_cyc /*verilator public_flat_rw*/ = 32'd0;
  // the DMA's word strobe from its read engine, and the core scratchpad write it gates (a
  // reset in the middle of a load: tb_axi_frontdoor's "reset" commands)
  wire        rd_we /*verilator public_flat_rd*/ = u_dut.u_dma.rd_we;
  wire        load_we /*verilator public_flat_rd*/ = u_dut.hw_en;
  wire [31:0] prot_err /*verilator public_flat_rw*/;
  wire [31:0] rd_beats /*verilator public_flat_rw*/;
  wire [31:0] wr_beats /*verilator public_flat_rw*/;

  // AXI4 between the DMA and the memory
  wire [ADDR_W-1:0]   araddr, awaddr;
  wire [7:0]          arlen, awlen;
  wire [2:0]          arsize, awsize;
  wire [1:0]          arburst, awburst, rresp, bresp;
  wire                arvalid, arready, rlast, rvalid, rready, awvalid, awready;
  wire                wlast, wvalid, wready, bvalid, bready;
  wire [DATA_W-1:0]   rdata, wdata;
  wire [DATA_W/8-1:0] wstrb;
  wire                mem_rid, mem_bid;        // IDs (the DMA has none)
  wire [ADDR_W-1:0]   mem_err_addr;

  t2c_axi_accel #(
    .ROWS(ROWS), .COLS(COLS), .N(N), .M(M), .A_BITS(A_BITS), .W_BITS(W_BITS),
    .ACC_BITS(ACC_BITS), .MULT_BITS(MULT_BITS), .SHIFT_MAX(SHIFT_MAX), .ACT_DEPTH(ACT_DEPTH),
    .W_DEPTH(W_DEPTH), .OUT_DEPTH(OUT_DEPTH), .CH_DEPTH(CH_DEPTH), .Y_BITS(Y_BITS),
    .PACKED(PACKED), .PROFILES(PROFILES), .ROW_PARAMS(ROW_PARAMS), .ZERO_POINTS(ZERO_POINTS),
    .ADDR_W(ADDR_W), .DATA_W(DATA_W), .BURST_LEN(BURST_LEN),
    .OUTSTANDING(OUTSTANDING), .LITE_ADDR_W(LA_W)
  ) u_dut (
    .clk_i(clk), .rst_ni(rst_n),
    .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid),
    .s_axil_awready(s_axil_awready), .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb),
    .s_axil_wvalid(s_axil_wvalid), .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp),
    .s_axil_bvalid(s_axil_bvalid), .s_axil_bready(s_axil_bready),
    .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
    .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
    .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
    .m_axi_araddr(araddr), .m_axi_arlen(arlen), .m_axi_arsize(arsize), .m_axi_arburst(arburst),
    .m_axi_arvalid(arvalid), .m_axi_arready(arready), .m_axi_rdata(rdata), .m_axi_rresp(rresp),
    .m_axi_rlast(rlast), .m_axi_rvalid(rvalid), .m_axi_rready(rready),
    .m_axi_awaddr(awaddr), .m_axi_awlen(awlen), .m_axi_awsize(awsize), .m_axi_awburst(awburst),
    .m_axi_awvalid(awvalid), .m_axi_awready(awready), .m_axi_wdata(wdata), .m_axi_wstrb(wstrb),
    .m_axi_wlast(wlast), .m_axi_wvalid(wvalid), .m_axi_wready(wready), .m_axi_bresp(bresp),
    .m_axi_bvalid(bvalid), .m_axi_bready(bready), .irq_o(irq)
  );

  t2c_axi_mem #(
    .ADDR_W(ADDR_W), .DATA_W(DATA_W), .MEM_WORDS(MEM_WORDS), .RD_LAT(RD_LAT), .WR_LAT(WR_LAT),
    .MAX_BURST(MAX_BURST), .QDEPTH(QDEPTH)
  ) u_mem (
    .clk_i(clk), .rst_ni(rst_n),
    .s_axi_arid(1'b0), .s_axi_rid(mem_rid), .s_axi_awid(1'b0), .s_axi_bid(mem_bid),
    .err_addr_o(mem_err_addr),
    .s_axi_araddr(araddr), .s_axi_arlen(arlen), .s_axi_arsize(arsize), .s_axi_arburst(arburst),
    .s_axi_arvalid(arvalid), .s_axi_arready(arready), .s_axi_rdata(rdata), .s_axi_rresp(rresp),
    .s_axi_rlast(rlast), .s_axi_rvalid(rvalid), .s_axi_rready(rready),
    .s_axi_awaddr(awaddr), .s_axi_awlen(awlen), .s_axi_awsize(awsize), .s_axi_awburst(awburst),
    .s_axi_awvalid(awvalid), .s_axi_awready(awready), .s_axi_wdata(wdata), .s_axi_wstrb(wstrb),
    .s_axi_wlast(wlast), .s_axi_wvalid(wvalid), .s_axi_wready(wready), .s_axi_bresp(bresp),
    .s_axi_bvalid(bvalid), .s_axi_bready(bready),
    .err_lo_i(err_lo), .err_hi_i(err_hi), .prot_err_o(prot_err), .rd_beats_o(rd_beats),
    .wr_beats_o(wr_beats)
  );

  // ---- memory image in, results out
  reg  [31:0] nwords [0:0];
  integer     fstat;
  initial begin
    $readmemh("mem_words.hex", nwords);
    if (nwords[0] > MEM_WORDS) begin
      $fatal(1, "%m: mem.hex has %0d beats, more than MEM_WORDS=%0d", nwords[0], MEM_WORDS);
    end
    if (nwords[0] != 32'd0) begin
      $readmemh("mem.hex", u_mem.mem_q, 0, nwords[0] - 1);
    end
    fstat = $fopen("tiles.txt", "w");
    repeat (2) @(posedge clk);
    rst_n = 1'b1;
  end

  reg [8*32-1:0] fout;
  always @(posedge dump_go) begin
    $sformat(fout, "out%0d.hex", dump_id);
    $writememh(fout, u_mem.mem_q, dump_lo, dump_hi);
  end

  // ---- per core run: "run err cycles" (as the back-door harness), when the DMA sees it done
  always @(posedge clk) begin
    if (rst_n && u_dut.u_dma.c_done) begin
      $fwrite(fstat, "%0d %0d %0d\n", run_base + u_dut.u_dma.jfin_q, u_dut.u_top.err_o,
              u_dut.u_top.cycles_o);
      $fflush(fstat);
    end
  end

  // ---- front-door cycles: first AXI4-Lite write after meas_arm to irq high
  always @(posedge clk) begin
    if (meas_on) begin
      if (irq) begin
        meas_on <= 1'b0;
      end else begin
        meas_cyc <= meas_cyc + 32'd1;
      end
    end else if (meas_arm && s_axil_awvalid && s_axil_awready) begin
      meas_on  <= 1'b1;
      meas_cyc <= 32'd0;
    end
  end

endmodule

/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on PROCASSINIT */
`default_nettype wire
