// t2c_axi_accel: the accelerator behind a front door: AXI4-Lite registers, an AXI4 DMA master
// and t2c_accel_top, with an interrupt.
//
//             AXI4-Lite                                   AXI4 (memory)
//   host ----------------> t2c_axil_regs --job/start--> t2c_axi_dma <------------> memory
//              irq_o <----------'  ^---status/err/cycles---'   | hw_* (write port)   ^
//                                                               | hr_* (read port)    |
//                                                         t2c_accel_top              |
//                                        (descriptors, act/wgt/ch words in, out/acc words out)
//
// The host writes the job registers (one run) or a descriptor list address and count, then
// START; the DMA reads the descriptors and operands from memory into the scratchpads, runs the
// core once per job, writes the outputs (and accumulators) back and raises the interrupt.
// Register map, memory layouts, timing and the exact cycle formula: docs/rtl.md, "Front door
// (AXI)"; the cycle model: t2c_sim.estimate.frontdoor. The core's own ports and behaviour are
// unchanged (the back-door harness drives them directly).
`timescale 1ns / 1ps
`default_nettype none

module t2c_axi_accel #(
  parameter integer ROWS        = 4,    // t2c_accel_top parameters (HwConfig)
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
  parameter integer Y_BITS      = 16,
  parameter integer PACKED      = 0,    // PE array implementation (t2c_pe_array)
  parameter integer PROFILES    = 1,    // t2c_accel_top build features (HwConfig)
  parameter integer ROW_PARAMS  = 1,
  parameter integer ZERO_POINTS = 1,
  parameter integer ADDR_W      = 32,   // AXI4 byte address width (12..32)
  parameter integer DATA_W      = 64,   // AXI4 data width (power of two, 32..1024)
  parameter integer BURST_LEN   = 16,   // longest INCR burst in beats (power of two, 1..256)
  parameter integer OUTSTANDING = 4,    // bursts in flight per direction (1..15)
  parameter integer LITE_ADDR_W = 8     // AXI4-Lite byte address width
) (
  input  wire                     clk_i,
  input  wire                     rst_ni,          // synchronous, active low
  // AXI4-Lite slave: registers
  input  wire [LITE_ADDR_W-1:0]   s_axil_awaddr,
  input  wire                     s_axil_awvalid,
  output wire                     s_axil_awready,
  input  wire [31:0]              s_axil_wdata,
  input  wire [3:0]               s_axil_wstrb,
  input  wire                     s_axil_wvalid,
  output wire                     s_axil_wready,
  output wire [1:0]               s_axil_bresp,
  output wire                     s_axil_bvalid,
  input  wire                     s_axil_bready,
  input  wire [LITE_ADDR_W-1:0]   s_axil_araddr,
  input  wire                     s_axil_arvalid,
  output wire                     s_axil_arready,
  output wire [31:0]              s_axil_rdata,
  output wire [1:0]               s_axil_rresp,
  output wire                     s_axil_rvalid,
  input  wire                     s_axil_rready,
  // AXI4 master: memory
  output wire [ADDR_W-1:0]        m_axi_araddr,
  output wire [7:0]               m_axi_arlen,
  output wire [2:0]               m_axi_arsize,
  output wire [1:0]               m_axi_arburst,
  output wire                     m_axi_arvalid,
  input  wire                     m_axi_arready,
  input  wire [DATA_W-1:0]        m_axi_rdata,
  input  wire [1:0]               m_axi_rresp,
  input  wire                     m_axi_rlast,
  input  wire                     m_axi_rvalid,
  output wire                     m_axi_rready,
  output wire [ADDR_W-1:0]        m_axi_awaddr,
  output wire [7:0]               m_axi_awlen,
  output wire [2:0]               m_axi_awsize,
  output wire [1:0]               m_axi_awburst,
  output wire                     m_axi_awvalid,
  input  wire                     m_axi_awready,
  output wire [DATA_W-1:0]        m_axi_wdata,
  output wire [DATA_W/8-1:0]      m_axi_wstrb,
  output wire                     m_axi_wlast,
  output wire                     m_axi_wvalid,
  input  wire                     m_axi_wready,
  input  wire [1:0]               m_axi_bresp,
  input  wire                     m_axi_bvalid,
  output wire                     m_axi_bready,
  output wire                     irq_o
);

  // scratchpad word widths (as in t2c_accel_top)
  localparam integer IDX_BITS = (M > 1) ? $clog2(M) : 1;
  localparam integer ACT_W    = M * ROWS * A_BITS;
  localparam integer WGT_W    = COLS * (N * W_BITS + N * IDX_BITS);
  localparam integer CH_W     = COLS * (ACC_BITS + MULT_BITS + 6);
  localparam integer HW_W     = (ACT_W > WGT_W) ? ((ACT_W > CH_W) ? ACT_W : CH_W)
                                                : ((WGT_W > CH_W) ? WGT_W : CH_W);
  localparam integer Y_W      = COLS * Y_BITS;
  localparam integer ACC_W    = COLS * ACC_BITS;

  wire [20*32-1:0] job;
  wire [31:0]      desc_addr, desc_count, jobs, fd_cycles, core_cycles_sum;
  wire             start, dma_busy, fin;
  wire [10:0]      dma_err;

  wire             core_start, core_done;
  /* verilator lint_off UNUSEDSIGNAL */ // the DMA follows done_o; busy_o is for debugging
  wire             core_busy;
  /* verilator lint_on UNUSEDSIGNAL */
  wire [7:0]       core_err;
  wire [31:0]      core_cycles;
  wire [31:0]      cfg_rows, cfg_groups, cfg_cols;
  wire             cfg_a_signed, cfg_first, cfg_last;
  wire [Y_BITS-1:0] cfg_zy, cfg_lo, cfg_hi;
  wire [31:0]      cfg_mode;
  wire             hw_en;
  wire [1:0]       hw_sel;
  wire [31:0]      hw_addr, hr_addr;
  wire [HW_W-1:0]  hw_data;
  wire [Y_W-1:0]   hr_y;
  wire [ACC_W-1:0] hr_acc;

  t2c_axil_regs #(
    .ADDR_W      (LITE_ADDR_W),
    .ROWS        (ROWS),
    .COLS        (COLS),
    .N           (N),
    .M           (M),
    .A_BITS      (A_BITS),
    .W_BITS      (W_BITS),
    .ACC_BITS    (ACC_BITS),
    .MULT_BITS   (MULT_BITS),
    .SHIFT_MAX   (SHIFT_MAX),
    .ACT_DEPTH   (ACT_DEPTH),
    .W_DEPTH     (W_DEPTH),
    .OUT_DEPTH   (OUT_DEPTH),
    .CH_DEPTH    (CH_DEPTH),
    .Y_BITS      (Y_BITS),
    .DATA_W      (DATA_W),
    .BURST_LEN   (BURST_LEN),
    .OUTSTANDING (OUTSTANDING)
  ) u_regs (
    .clk_i          (clk_i),
    .rst_ni         (rst_ni),
    .s_axil_awaddr  (s_axil_awaddr),
    .s_axil_awvalid (s_axil_awvalid),
    .s_axil_awready (s_axil_awready),
    .s_axil_wdata   (s_axil_wdata),
    .s_axil_wstrb   (s_axil_wstrb),
    .s_axil_wvalid  (s_axil_wvalid),
    .s_axil_wready  (s_axil_wready),
    .s_axil_bresp   (s_axil_bresp),
    .s_axil_bvalid  (s_axil_bvalid),
    .s_axil_bready  (s_axil_bready),
    .s_axil_araddr  (s_axil_araddr),
    .s_axil_arvalid (s_axil_arvalid),
    .s_axil_arready (s_axil_arready),
    .s_axil_rdata   (s_axil_rdata),
    .s_axil_rresp   (s_axil_rresp),
    .s_axil_rvalid  (s_axil_rvalid),
    .s_axil_rready  (s_axil_rready),
    .job_o          (job),
    .desc_addr_o    (desc_addr),
    .desc_count_o   (desc_count),
    .start_o        (start),
    .busy_i         (dma_busy),
    .fin_i          (fin),
    .err_i          (dma_err),
    .jobs_i         (jobs),
    .cycles_i       (fd_cycles),
    .core_cycles_i  (core_cycles_sum),
    .irq_o          (irq_o)
  );

  t2c_axi_dma #(
    .ADDR_W      (ADDR_W),
    .DATA_W      (DATA_W),
    .BURST_LEN   (BURST_LEN),
    .OUTSTANDING (OUTSTANDING),
    .ACT_W       (ACT_W),
    .WGT_W       (WGT_W),
    .CH_W        (CH_W),
    .HW_W        (HW_W),
    .Y_W         (Y_W),
    .ACC_W       (ACC_W),
    .Y_BITS      (Y_BITS),
    .ACT_BANK    (ACT_DEPTH / ROWS),
    .W_BANK      (W_DEPTH / COLS),
    .CH_BANK     (CH_DEPTH / COLS),
    .OUT_DEPTH   (OUT_DEPTH)
  ) u_dma (
    .clk_i          (clk_i),
    .rst_ni         (rst_ni),
    .start_i        (start),
    .job_i          (job),
    .desc_addr_i    (desc_addr),
    .desc_count_i   (desc_count),
    .busy_o         (dma_busy),
    .fin_o          (fin),
    .err_o          (dma_err),
    .jobs_o         (jobs),
    .cycles_o       (fd_cycles),
    .core_cycles_o  (core_cycles_sum),
    .core_start_o   (core_start),
    .cfg_rows_o     (cfg_rows),
    .cfg_groups_o   (cfg_groups),
    .cfg_cols_o     (cfg_cols),
    .cfg_a_signed_o (cfg_a_signed),
    .cfg_first_o    (cfg_first),
    .cfg_last_o     (cfg_last),
    .cfg_zy_o       (cfg_zy),
    .cfg_lo_o       (cfg_lo),
    .cfg_hi_o       (cfg_hi),
    .cfg_mode_o     (cfg_mode),
    .core_done_i    (core_done),
    .core_err_i     (core_err),
    .core_cycles_i  (core_cycles),
    .hw_en_o        (hw_en),
    .hw_sel_o       (hw_sel),
    .hw_addr_o      (hw_addr),
    .hw_data_o      (hw_data),
    .hr_addr_o      (hr_addr),
    .hr_y_i         (hr_y),
    .hr_acc_i       (hr_acc),
    .m_axi_araddr   (m_axi_araddr),
    .m_axi_arlen    (m_axi_arlen),
    .m_axi_arsize   (m_axi_arsize),
    .m_axi_arburst  (m_axi_arburst),
    .m_axi_arvalid  (m_axi_arvalid),
    .m_axi_arready  (m_axi_arready),
    .m_axi_rdata    (m_axi_rdata),
    .m_axi_rresp    (m_axi_rresp),
    .m_axi_rlast    (m_axi_rlast),
    .m_axi_rvalid   (m_axi_rvalid),
    .m_axi_rready   (m_axi_rready),
    .m_axi_awaddr   (m_axi_awaddr),
    .m_axi_awlen    (m_axi_awlen),
    .m_axi_awsize   (m_axi_awsize),
    .m_axi_awburst  (m_axi_awburst),
    .m_axi_awvalid  (m_axi_awvalid),
    .m_axi_awready  (m_axi_awready),
    .m_axi_wdata    (m_axi_wdata),
    .m_axi_wstrb    (m_axi_wstrb),
    .m_axi_wlast    (m_axi_wlast),
    .m_axi_wvalid   (m_axi_wvalid),
    .m_axi_wready   (m_axi_wready),
    .m_axi_bresp    (m_axi_bresp),
    .m_axi_bvalid   (m_axi_bvalid),
    .m_axi_bready   (m_axi_bready)
  );

  t2c_accel_top #(
    .ROWS      (ROWS),
    .COLS      (COLS),
    .N         (N),
    .M         (M),
    .A_BITS    (A_BITS),
    .W_BITS    (W_BITS),
    .ACC_BITS  (ACC_BITS),
    .MULT_BITS (MULT_BITS),
    .SHIFT_MAX (SHIFT_MAX),
    .ACT_DEPTH (ACT_DEPTH),
    .W_DEPTH   (W_DEPTH),
    .OUT_DEPTH (OUT_DEPTH),
    .CH_DEPTH  (CH_DEPTH),
    .Y_BITS    (Y_BITS),
    .PACKED    (PACKED),
    .PROFILES  (PROFILES),
    .ROW_PARAMS (ROW_PARAMS),
    .ZERO_POINTS (ZERO_POINTS)
  ) u_top (
    .clk_i          (clk_i),
    .rst_ni         (rst_ni),
    .start_i        (core_start),
    .cfg_rows_i     (cfg_rows),
    .cfg_groups_i   (cfg_groups),
    .cfg_cols_i     (cfg_cols),
    .cfg_a_signed_i (cfg_a_signed),
    .cfg_first_i    (cfg_first),
    .cfg_last_i     (cfg_last),
    .cfg_zy_i       (cfg_zy),
    .cfg_lo_i       (cfg_lo),
    .cfg_hi_i       (cfg_hi),
    .cfg_mode_i     (cfg_mode),
    .busy_o         (core_busy),
    .done_o         (core_done),
    .err_o          (core_err),
    .cycles_o       (core_cycles),
    .hw_en_i        (hw_en),
    .hw_sel_i       (hw_sel),
    .hw_addr_i      (hw_addr),
    .hw_data_i      (hw_data),
    .hr_addr_i      (hr_addr),
    .hr_y_o         (hr_y),
    .hr_acc_o       (hr_acc)
  );

endmodule

`default_nettype wire
