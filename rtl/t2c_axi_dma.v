// t2c_axi_dma: job sequencer and AXI4 master of the front door (t2c_axi_accel).
//
// A command (start_i from t2c_axil_regs) runs a list of jobs; one job is one run of
// t2c_accel_top (a tile, or one K-chunk of a tile). Its 20 fields (docs/rtl.md, "Front door")
// are, in order: rows, groups, cols, a_signed, z_y, lo, hi, mode (the core's 32-bit run-mode
// register), first, last, then address and word count of the act, wgt, ch, out and acc
// segments (with the run-mode bit ROWPAR the ch segment is the per-row parameters: written to
// the core's rp memory, up to OUT_DEPTH words). With desc_count_i = 0 the command is
// the one job held in the job registers (job_i); with desc_count_i = D it is D descriptors read
// from memory at desc_addr_i + 128*j, each the same 20 words (32-bit, little-endian, the rest of
// the 128 bytes unused).
//
// Per job: (list mode) read its descriptor, check it (word counts within the banks, addresses
// aligned to DATA_W/8), read the act, wgt and ch words into the scratchpads through the core's
// host write port (t2c_axi_rd), start the core, and when it is done write its out and acc words
// back from the host read port (t2c_axi_wr). Jobs overlap where the hardware allows it:
//
//   fetch j+1 ........ from the start of job j (the core has latched job j's configuration)
//   load  j+1 ........ when the core is done with job j, while job j's results are written
//   start j+1 ........ when job j+1 is loaded and job j's results have been read out
//
// A memory word of W bits occupies K = ceil(W / DATA_W) beats, low bits first; a segment of n
// words is n*K consecutive beats. The command completes (fin_o, one cycle) when every job is
// stored and acknowledged, or, after an error, when everything in flight has drained: an error
// stops new fetches, loads, starts and stores; bursts already issued complete.
//
// err_o (sticky for the command): [7:0] the core's err_o of a failed run (the job is not
// stored), [8] a read response with RRESP != OKAY (the job being read is not started), [9] a
// write response with BRESP != OKAY, [10] an invalid descriptor or descriptor address (a count
// beyond its bank, an address not aligned to DATA_W/8 or beyond ADDR_W bits).
// cycles_o counts the cycles from the edge that accepts start_i to the edge that raises fin_o;
// t2c_sim.estimate.frontdoor predicts it exactly for t2c_axi_mem.
//
// Like t2c_accel_top, each block is one clocked process (reset last): an event-driven simulator
// wakes few processes per cycle.
`timescale 1ns / 1ps
`default_nettype none

module t2c_axi_dma #(
  parameter integer ADDR_W      = 32,   // AXI byte address width (<= 32)
  parameter integer DATA_W      = 64,   // AXI data width (power of two, 32..1024)
  parameter integer BURST_LEN   = 16,   // longest burst in beats (power of two, 1..256)
  parameter integer OUTSTANDING = 4,    // bursts in flight per direction (1..15)
  parameter integer ACT_W       = 128,  // scratchpad word widths of t2c_accel_top
  parameter integer WGT_W       = 80,
  parameter integer CH_W        = 280,
  parameter integer HW_W        = 280,  // width of the core's host write port
  parameter integer Y_W         = 64,   // output word (COLS * Y_BITS)
  parameter integer ACC_W       = 128,  // accumulator word (COLS * ACC_BITS)
  parameter integer Y_BITS      = 16,   // z_y / lo / hi width of the core
  parameter integer ACT_BANK    = 1024, // scratchpad depths in words
  parameter integer W_BANK      = 1024,
  parameter integer CH_BANK     = 64,
  parameter integer OUT_DEPTH   = 4096
) (
  input  wire                    clk_i,
  input  wire                    rst_ni,         // synchronous, active low
  // register block
  input  wire                    start_i,        // accepted when not busy
  input  wire [20*32-1:0]        job_i,
  input  wire [31:0]             desc_addr_i,
  input  wire [31:0]             desc_count_i,
  output wire                    busy_o,
  output reg                     fin_o,
  output wire [10:0]             err_o,
  output wire [31:0]             jobs_o,         // jobs computed without error
  output wire [31:0]             cycles_o,       // front-door cycles of the command
  output wire [31:0]             core_cycles_o,  // sum of the core's cycles_o
  // core control
  output wire                    core_start_o,
  output wire [31:0]             cfg_rows_o,
  output wire [31:0]             cfg_groups_o,
  output wire [31:0]             cfg_cols_o,
  output wire                    cfg_a_signed_o,
  output wire                    cfg_first_o,
  output wire                    cfg_last_o,
  output wire [Y_BITS-1:0]       cfg_zy_o,
  output wire [Y_BITS-1:0]       cfg_lo_o,
  output wire [Y_BITS-1:0]       cfg_hi_o,
  output wire [31:0]             cfg_mode_o,     // the core's run-mode register
  input  wire                    core_done_i,
  input  wire [7:0]              core_err_i,
  input  wire [31:0]             core_cycles_i,
  // core host ports
  output wire                    hw_en_o,
  output wire [1:0]              hw_sel_o,
  output wire [31:0]             hw_addr_o,
  output wire [HW_W-1:0]         hw_data_o,
  output wire [31:0]             hr_addr_o,
  input  wire [Y_W-1:0]          hr_y_i,
  input  wire [ACC_W-1:0]        hr_acc_i,
  // AXI4 master (INCR bursts of full-width beats; no IDs, one ID space)
  output wire [ADDR_W-1:0]       m_axi_araddr,
  output wire [7:0]              m_axi_arlen,
  output wire [2:0]              m_axi_arsize,
  output wire [1:0]              m_axi_arburst,
  output wire                    m_axi_arvalid,
  input  wire                    m_axi_arready,
  input  wire [DATA_W-1:0]       m_axi_rdata,
  input  wire [1:0]              m_axi_rresp,
  input  wire                    m_axi_rlast,
  input  wire                    m_axi_rvalid,
  output wire                    m_axi_rready,
  output wire [ADDR_W-1:0]       m_axi_awaddr,
  output wire [7:0]              m_axi_awlen,
  output wire [2:0]              m_axi_awsize,
  output wire [1:0]              m_axi_awburst,
  output wire                    m_axi_awvalid,
  input  wire                    m_axi_awready,
  output wire [DATA_W-1:0]       m_axi_wdata,
  output wire [DATA_W/8-1:0]     m_axi_wstrb,
  output wire                    m_axi_wlast,
  output wire                    m_axi_wvalid,
  input  wire                    m_axi_wready,
  input  wire [1:0]              m_axi_bresp,
  input  wire                    m_axi_bvalid,
  output wire                    m_axi_bready
);

  // ------------------------------------------------------------------------- sizes
  localparam integer NF     = 20;                       // job fields
  localparam integer DESC_W = NF * 32;
  localparam integer SZ     = $clog2(DATA_W / 8);
  localparam integer K_A    = (ACT_W + DATA_W - 1) / DATA_W;
  localparam integer K_W    = (WGT_W + DATA_W - 1) / DATA_W;
  localparam integer K_C    = (CH_W + DATA_W - 1) / DATA_W;
  localparam integer K_D    = (DESC_W + DATA_W - 1) / DATA_W;
  localparam integer K_Y    = (Y_W + DATA_W - 1) / DATA_W;
  localparam integer K_R    = (ACC_W + DATA_W - 1) / DATA_W;
  localparam integer RK_AW  = (K_A > K_W) ? K_A : K_W;
  localparam integer RK_CD  = (K_C > K_D) ? K_C : K_D;
  localparam integer RKMAX  = (RK_AW > RK_CD) ? RK_AW : RK_CD;
  localparam integer WKMAX  = (K_Y > K_R) ? K_Y : K_R;
  // job fields
  localparam integer F_ROWS = 0, F_GROUPS = 1, F_COLS = 2, F_ASG = 3, F_ZY = 4, F_LO = 5,
                     F_HI = 6, F_MODE = 7, F_FIRST = 8, F_LAST = 9, F_ACT_A = 10, F_ACT_N = 11,
                     F_WGT_A = 12, F_WGT_N = 13, F_CH_A = 14, F_CH_N = 15, F_OUT_A = 16,
                     F_OUT_N = 17, F_ACC_A = 18, F_ACC_N = 19;
  localparam [1:0] RK_NONE = 2'd0, RK_FETCH = 2'd1, RK_LOAD = 2'd2;
  localparam [2:0] AXSIZE  = SZ[2:0];
  localparam [32:0] ASPAN  = 33'd1 << ADDR_W;
  localparam [31:0] AHI    = ~(ASPAN[31:0] - 32'd1);  // address bits the bus does not carry

  initial begin
    if (ADDR_W < 12 || ADDR_W > 32) begin
      $fatal(1, "%m: ADDR_W=%0d must be in 12..32", ADDR_W);
    end
    if (HW_W < ACT_W || HW_W < WGT_W || HW_W < CH_W) begin
      $fatal(1, "%m: HW_W=%0d is narrower than a scratchpad word", HW_W);
    end
    if (Y_BITS > 32) begin
      $fatal(1, "%m: Y_BITS=%0d must be <= 32", Y_BITS);
    end
  end

  // ------------------------------------------------------------------------- state
  reg                run_q, list_q, dnew_q, dok_q, ld_q, cmp_q;
  reg  [1:0]         rdk_q;
  reg  [31:0]        njobs_q, fidx_q, jfin_q, cyc_q, ccyc_q;
  reg  [ADDR_W-1:0]  daddr_q;
  reg  [10:0]        err_q;
  reg  [DESC_W-1:0]  cur_q;                     // the job being fetched / loaded / started
  reg  [ADDR_W-1:0]  st_oa_q, st_aa_q;           // store of the job in the core: addresses,
  reg  [31:0]        st_on_q, st_an_q;           // word counts

  // engines
  wire               rd_busy, rd_err, rd_we;
  wire [1:0]         rd_wseg;
  wire [31:0]        rd_waddr;
  /* verilator lint_off UNUSEDSIGNAL */ // whole beats: the bits above the widest word are padding
  wire [RKMAX*DATA_W-1:0] rd_wdata;
  /* verilator lint_on UNUSEDSIGNAL */
  wire               wr_busy, wr_idle, wr_err;
  wire [31:0]        wr_rd_addr;

  // fields of the current job
  wire [31:0] j_act_a = cur_q[F_ACT_A*32 +: 32], j_act_n = cur_q[F_ACT_N*32 +: 32];
  wire [31:0] j_wgt_a = cur_q[F_WGT_A*32 +: 32], j_wgt_n = cur_q[F_WGT_N*32 +: 32];
  wire [31:0] j_ch_a  = cur_q[F_CH_A*32 +: 32],  j_ch_n  = cur_q[F_CH_N*32 +: 32];
  wire [31:0] j_out_a = cur_q[F_OUT_A*32 +: 32], j_out_n = cur_q[F_OUT_N*32 +: 32];
  wire [31:0] j_acc_a = cur_q[F_ACC_A*32 +: 32], j_acc_n = cur_q[F_ACC_N*32 +: 32];
  // run mode bit 3 (ROWPAR): the ch segment is the rp memory's (one word per output row and
  // column block, at most OUT_DEPTH words)
  wire        j_rowpar = cur_q[F_MODE*32 + 3];

  // ------------------------------------------------------------------------- conditions
  wire stop    = (err_q != 11'd0);
  wire rd_idle = !rd_busy && (rdk_q == RK_NONE);
  wire rd_end  = !rd_busy && (rdk_q != RK_NONE);
  wire c_done  = cmp_q && core_done_i;
  wire c_bad   = c_done && (core_err_i != 8'd0);
  wire f_go    = run_q && !stop && list_q && rd_idle && (fidx_q < njobs_q)
                 && !dnew_q && !dok_q && !ld_q;
  wire l_go    = run_q && !stop && dok_q && rd_idle && (!cmp_q || core_done_i) && !c_bad;
  wire s_go    = run_q && !stop && ld_q && !cmp_q && !wr_busy;
  wire w_go    = c_done && !c_bad && !stop && ((st_on_q | st_an_q) != 32'd0);
  wire fin_go  = run_q && !cmp_q && rd_idle && wr_idle && (stop || jfin_q == njobs_q);
  wire cmd_go  = start_i && !run_q;

  // descriptor check: word counts within the banks, used addresses aligned to a beat and
  // within the bus's ADDR_W bits
  function seg_bad(input [31:0] a, input [31:0] n);
    seg_bad = (n != 32'd0) && ((a[SZ-1:0] != {SZ{1'b0}}) || ((a & AHI) != 32'd0));
  endfunction
  localparam [31:0] ACT_BANK_L = ACT_BANK[31:0], W_BANK_L = W_BANK[31:0],
                    CH_BANK_L = CH_BANK[31:0], OUT_DEPTH_L = OUT_DEPTH[31:0];
  wire desc_bad = (j_act_n > ACT_BANK_L) || (j_wgt_n > W_BANK_L)
                  || (j_ch_n > (j_rowpar ? OUT_DEPTH_L : CH_BANK_L))
                  || (j_out_n > OUT_DEPTH_L) || (j_acc_n > OUT_DEPTH_L)
                  || seg_bad(j_act_a, j_act_n) || seg_bad(j_wgt_a, j_wgt_n)
                  || seg_bad(j_ch_a, j_ch_n) || seg_bad(j_out_a, j_out_n)
                  || seg_bad(j_acc_a, j_acc_n);

  // ------------------------------------------------------------------------- sequencer
  always @(posedge clk_i) begin
    fin_o <= 1'b0;
    if (run_q) begin
      cyc_q <= cyc_q + 32'd1;
      err_q[8] <= err_q[8] | rd_err;
      err_q[9] <= err_q[9] | wr_err;
    end
    // the read engine finished a task
    if (rd_end) begin
      rdk_q <= RK_NONE;
      if (rdk_q == RK_FETCH) begin
        cur_q  <= rd_wdata[DESC_W-1:0];
        dnew_q <= 1'b1;
        fidx_q <= fidx_q + 32'd1;
      end else begin
        ld_q <= 1'b1;
      end
    end
    if (f_go) begin
      rdk_q <= RK_FETCH;
    end
    if (l_go) begin
      rdk_q <= RK_LOAD;
      dok_q <= 1'b0;
    end
    if (dnew_q) begin
      dnew_q <= 1'b0;
      if (desc_bad) begin
        err_q[10] <= 1'b1;
      end else begin
        dok_q <= 1'b1;
      end
    end
    if (s_go) begin
      cmp_q <= 1'b1;
      ld_q  <= 1'b0;
      st_oa_q <= j_out_a[ADDR_W-1:0];  st_on_q <= j_out_n;
      st_aa_q <= j_acc_a[ADDR_W-1:0];  st_an_q <= j_acc_n;
    end
    if (c_done) begin
      cmp_q  <= 1'b0;
      ccyc_q <= ccyc_q + core_cycles_i;
      if (c_bad) begin
        err_q[7:0] <= err_q[7:0] | core_err_i;
      end else begin
        jfin_q <= jfin_q + 32'd1;
      end
    end
    if (fin_go) begin
      run_q <= 1'b0;
      fin_o <= 1'b1;
    end
    if (cmd_go) begin
      run_q   <= 1'b1;
      list_q  <= (desc_count_i != 32'd0);
      njobs_q <= (desc_count_i != 32'd0) ? desc_count_i : 32'd1;
      daddr_q <= desc_addr_i[ADDR_W-1:0];
      fidx_q  <= 32'd0;
      jfin_q  <= 32'd0;
      cyc_q   <= 32'd0;
      ccyc_q  <= 32'd0;
      err_q   <= {seg_bad(desc_addr_i, desc_count_i), 10'd0};
      dnew_q  <= (desc_count_i == 32'd0);
      dok_q   <= 1'b0;
      ld_q    <= 1'b0;
      cmp_q   <= 1'b0;
      rdk_q   <= RK_NONE;
      if (desc_count_i == 32'd0) begin
        cur_q <= job_i;
      end
    end
    if (!rst_ni) begin
      run_q <= 1'b0;  fin_o <= 1'b0;  dnew_q <= 1'b0;  dok_q <= 1'b0;  ld_q <= 1'b0;
      cmp_q <= 1'b0;  rdk_q <= RK_NONE;  err_q <= 11'd0;  njobs_q <= 32'd0;  fidx_q <= 32'd0;
      jfin_q <= 32'd0;  cyc_q <= 32'd0;  ccyc_q <= 32'd0;  list_q <= 1'b0;
    end
  end

  // ------------------------------------------------------------------------- read engine
  wire [ADDR_W-1:0] f_addr = daddr_q + {fidx_q[ADDR_W-8:0], 7'd0};  // 128 bytes per descriptor
  wire [3*ADDR_W-1:0] rd_sa = f_go ? {{(2*ADDR_W){1'b0}}, f_addr}
                                   : {j_ch_a[ADDR_W-1:0], j_wgt_a[ADDR_W-1:0], j_act_a[ADDR_W-1:0]};
  wire [3*32-1:0]     rd_sw = f_go ? {64'd0, 32'd1} : {j_ch_n, j_wgt_n, j_act_n};
  wire [3*8-1:0]  rd_sk = f_go ? {16'd0, K_D[7:0]} : {K_C[7:0], K_W[7:0], K_A[7:0]};

  t2c_axi_rd #(
    .ADDR_W      (ADDR_W),
    .DATA_W      (DATA_W),
    .BURST_LEN   (BURST_LEN),
    .OUTSTANDING (OUTSTANDING),
    .NSEG        (3),
    .KMAX        (RKMAX)
  ) u_rd (
    .clk_i       (clk_i),
    .rst_ni      (rst_ni),
    .clr_i       (cmd_go),
    .start_i     (f_go || l_go),
    .seg_addr_i  (rd_sa),
    .seg_words_i (rd_sw),
    .seg_k_i     (rd_sk),
    .busy_o      (rd_busy),
    .err_o       (rd_err),
    .we_o        (rd_we),
    .wseg_o      (rd_wseg),
    .waddr_o     (rd_waddr),
    .wdata_o     (rd_wdata),
    .araddr_o    (m_axi_araddr),
    .arlen_o     (m_axi_arlen),
    .arvalid_o   (m_axi_arvalid),
    .arready_i   (m_axi_arready),
    .rdata_i     (m_axi_rdata),
    .rresp_i     (m_axi_rresp),
    .rlast_i     (m_axi_rlast),
    .rvalid_i    (m_axi_rvalid),
    .rready_o    (m_axi_rready)
  );

  // ------------------------------------------------------------------------- write engine
  wire [2*ADDR_W-1:0]        wr_sa = {st_aa_q, st_oa_q};
  wire [2*WKMAX*DATA_W-1:0]  wr_data;
  assign wr_data[WKMAX*DATA_W-1:0]            = {{(WKMAX*DATA_W-Y_W){1'b0}}, hr_y_i};
  assign wr_data[2*WKMAX*DATA_W-1:WKMAX*DATA_W] = {{(WKMAX*DATA_W-ACC_W){1'b0}}, hr_acc_i};

  t2c_axi_wr #(
    .ADDR_W      (ADDR_W),
    .DATA_W      (DATA_W),
    .BURST_LEN   (BURST_LEN),
    .OUTSTANDING (OUTSTANDING),
    .NSEG        (2),
    .KMAX        (WKMAX)
  ) u_wr (
    .clk_i       (clk_i),
    .rst_ni      (rst_ni),
    .clr_i       (cmd_go),
    .start_i     (w_go),
    .seg_addr_i  (wr_sa),
    .seg_words_i ({st_an_q, st_on_q}),
    .seg_k_i     ({K_R[7:0], K_Y[7:0]}),
    .busy_o      (wr_busy),
    .idle_o      (wr_idle),
    .err_o       (wr_err),
    .rd_addr_o   (wr_rd_addr),
    .rd_data_i   (wr_data),
    .awaddr_o    (m_axi_awaddr),
    .awlen_o     (m_axi_awlen),
    .awvalid_o   (m_axi_awvalid),
    .awready_i   (m_axi_awready),
    .wdata_o     (m_axi_wdata),
    .wlast_o     (m_axi_wlast),
    .wvalid_o    (m_axi_wvalid),
    .wready_i    (m_axi_wready),
    .bresp_i     (m_axi_bresp),
    .bvalid_i    (m_axi_bvalid),
    .bready_o    (m_axi_bready)
  );

  // ------------------------------------------------------------------------- outputs
  assign busy_o        = run_q;
  assign err_o         = err_q;
  assign jobs_o        = jfin_q;
  assign cycles_o      = cyc_q;
  assign core_cycles_o = ccyc_q;

  assign core_start_o   = s_go;
  assign cfg_rows_o     = cur_q[F_ROWS*32 +: 32];
  assign cfg_groups_o   = cur_q[F_GROUPS*32 +: 32];
  assign cfg_cols_o     = cur_q[F_COLS*32 +: 32];
  assign cfg_a_signed_o = cur_q[F_ASG*32];
  assign cfg_first_o    = cur_q[F_FIRST*32];
  assign cfg_last_o     = cur_q[F_LAST*32];
  assign cfg_zy_o       = cur_q[F_ZY*32 +: Y_BITS];
  assign cfg_lo_o       = cur_q[F_LO*32 +: Y_BITS];
  assign cfg_hi_o       = cur_q[F_HI*32 +: Y_BITS];
  assign cfg_mode_o     = cur_q[F_MODE*32 +: 32];

  assign hw_en_o   = rd_we && (rdk_q == RK_LOAD);
  // a ROWPAR job's ch segment holds per-row parameters: they go to the core's rp memory
  assign hw_sel_o  = (rd_wseg == 2'd2 && j_rowpar) ? 2'd3 : rd_wseg;
  assign hw_addr_o = rd_waddr;
  assign hw_data_o = rd_wdata[HW_W-1:0];
  assign hr_addr_o = wr_rd_addr;

  assign m_axi_arsize  = AXSIZE;
  assign m_axi_arburst = 2'b01;  // INCR
  assign m_axi_awsize  = AXSIZE;
  assign m_axi_awburst = 2'b01;
  assign m_axi_wstrb   = {(DATA_W/8){1'b1}};

endmodule

`default_nettype wire
