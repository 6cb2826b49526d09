// t2c_axil_regs: AXI4-Lite register block of the front door (t2c_axi_accel).
//
// 32-bit registers at byte addresses (docs/rtl.md, "Front door (AXI)", has the table):
//
//   0x00 ID          RO  0x54324341 ("T2CA")       0x04 VERSION     RO  1
//   0x08 STATUS      RO  [0] busy, [1] done, [2] done with an error (both cleared by START)
//   0x0C ERR         RO  error flags of the last command (t2c_axi_dma), cleared by START
//   0x10 IRQ_EN      RW  [0] done, [1] error
//   0x14 IRQ_STATUS  RW1C [0] done, [1] error: set when a command completes; irq_o = |(EN & STATUS)
//   0x18 JOBS_DONE   RO  jobs of the last command the core computed without error
//   0x1C CYCLES      RO  front-door cycles of the last command (START accepted to completion)
//   0x20 CORE_CYCLES RO  sum of the core's cycle counter over those jobs
//   0x24..0x2C       RO  0 (reserved)
//   0x30..0x74       RO  build parameters, one per register: ROWS, COLS, N, M, A_BITS, W_BITS,
//                        ACC_BITS, MULT_BITS, SHIFT_MAX, ACT_DEPTH, W_DEPTH, OUT_DEPTH, CH_DEPTH,
//                        Y_BITS, DATA_W, BURST_LEN, OUTSTANDING, DESC_BYTES (128)
//   0x78..0x7C       RO  0 (reserved)
//   0x80..0xCC       RW  the job registers, one field each (rows, groups, cols, a_signed, z_y,
//                        lo, hi, mode, first, last, act addr/words, wgt addr/words, ch addr/words,
//                        out addr/words, acc addr/words): a descriptor's 20 words, in order
//   0xD0 DESC_ADDR   RW  byte address of the descriptor list
//   0xD4 DESC_COUNT  RW  descriptors to run (0: run the job registers once)
//   0xD8 START       WO  write 1 to bit 0: start a command (ignored while busy); reads 0
//
// Addresses from 0xDC up answer SLVERR (reads return 0). Writes honour WSTRB per byte. A write
// is taken when AWVALID and WVALID are both high and the response channel is free (B is
// registered: BVALID the cycle after the handshake); a read answers the cycle after ARVALID.
// So DESC_ADDR, DESC_COUNT, START are one contiguous write of 12 bytes (one burst of three
// AXI4-Lite writes), and a job from the registers one write of 23 words from 0x80.
`timescale 1ns / 1ps
`default_nettype none

module t2c_axil_regs #(
  parameter integer ADDR_W      = 8,    // AXI4-Lite byte address width (>= 8)
  // build parameters reported read-only (0x30..0x74)
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
  parameter integer Y_BITS      = 16,
  parameter integer DATA_W      = 64,
  parameter integer BURST_LEN   = 16,
  parameter integer OUTSTANDING = 4
) (
  input  wire               clk_i,
  input  wire               rst_ni,          // synchronous, active low
  // AXI4-Lite slave
  input  wire [ADDR_W-1:0]  s_axil_awaddr,
  input  wire               s_axil_awvalid,
  output wire               s_axil_awready,
  input  wire [31:0]        s_axil_wdata,
  input  wire [3:0]         s_axil_wstrb,
  input  wire               s_axil_wvalid,
  output wire               s_axil_wready,
  output wire [1:0]         s_axil_bresp,
  output wire               s_axil_bvalid,
  input  wire               s_axil_bready,
  input  wire [ADDR_W-1:0]  s_axil_araddr,
  input  wire               s_axil_arvalid,
  output wire               s_axil_arready,
  output wire [31:0]        s_axil_rdata,
  output wire [1:0]         s_axil_rresp,
  output wire               s_axil_rvalid,
  input  wire               s_axil_rready,
  // to / from the DMA
  output wire [20*32-1:0]   job_o,
  output wire [31:0]        desc_addr_o,
  output wire [31:0]        desc_count_o,
  output reg                start_o,         // one cycle, the cycle after START is written
  input  wire               busy_i,
  input  wire               fin_i,           // a command completed (one cycle)
  input  wire [10:0]        err_i,
  input  wire [31:0]        jobs_i,
  input  wire [31:0]        cycles_i,
  input  wire [31:0]        core_cycles_i,
  output wire               irq_o
);

  localparam [31:0] ID      = 32'h5432_4341;
  localparam [31:0] VERSION = 32'd1;
  localparam integer NREG   = 55;            // 0x00 .. 0xD8
  localparam integer JOB0   = 32;            // word index of the first job register (0x80)

  initial begin
    if (ADDR_W < 8 || ADDR_W > 32) begin
      $fatal(1, "%m: ADDR_W=%0d must be in 8..32", ADDR_W);
    end
  end

  reg  [20*32-1:0] job_q;                  // job register f at [f*32 +: 32]
  reg  [31:0] daddr_q, dcount_q;
  reg  [1:0]  irq_en_q, irq_st_q;
  reg  [1:0]  done_q;                        // STATUS[2:1]
  reg         bvalid_q, bslv_q, rvalid_q, rslv_q;
  reg  [31:0] rdata_q;

  // ------------------------------------------------------------------------- write channel
  wire        w_hs   = s_axil_awvalid && s_axil_wvalid && (!bvalid_q || s_axil_bready);
  /* verilator lint_off UNUSEDSIGNAL */ // word address: the two byte-offset bits are not decoded
  wire [ADDR_W-1:0] wa = s_axil_awaddr;
  wire [ADDR_W-1:0] ra = s_axil_araddr;
  /* verilator lint_on UNUSEDSIGNAL */
  wire [ADDR_W-3:0] widx = wa[ADDR_W-1:2];
  wire [ADDR_W-3:0] ridx = ra[ADDR_W-1:2];
  wire        w_in   = ({{(34-ADDR_W){1'b0}}, widx} < NREG);
  wire [31:0] ridx32 = {{(34-ADDR_W){1'b0}}, ridx};
  wire        r_in   = (ridx32 < NREG);
  reg  [31:0] wmask;
  integer     b;

  always @* begin
    for (b = 0; b < 4; b = b + 1) begin
      wmask[b*8 +: 8] = {8{s_axil_wstrb[b]}};
    end
  end

  // a register written with the strobes applied
  function [31:0] merge(input [31:0] old, input [31:0] data, input [31:0] mask);
    merge = (old & ~mask) | (data & mask);
  endfunction

  integer j;
  always @(posedge clk_i) begin
    start_o <= 1'b0;
    if (w_hs) begin
      bvalid_q <= 1'b1;
      bslv_q   <= !w_in;
      for (j = 0; j < 20; j = j + 1) begin
        if ({{(34-ADDR_W){1'b0}}, widx} == JOB0 + j) begin
          job_q[j*32 +: 32] <= merge(job_q[j*32 +: 32], s_axil_wdata, wmask);
        end
      end
      case ({{(34-ADDR_W){1'b0}}, widx})
        32'd4:  irq_en_q <= (irq_en_q & ~wmask[1:0]) | (s_axil_wdata[1:0] & wmask[1:0]);
        32'd5:  irq_st_q <= irq_st_q & ~(s_axil_wdata[1:0] & wmask[1:0]);
        32'd52: daddr_q  <= merge(daddr_q, s_axil_wdata, wmask);
        32'd53: dcount_q <= merge(dcount_q, s_axil_wdata, wmask);
        32'd54: start_o  <= s_axil_wdata[0] && s_axil_wstrb[0] && !busy_i;
        default: ;
      endcase
    end else if (s_axil_bready) begin
      bvalid_q <= 1'b0;
    end
    if (start_o) begin
      done_q <= 2'b00;
    end
    if (fin_i) begin  // a completion wins over a clear in the same cycle
      done_q   <= (err_i != 11'd0) ? 2'b10 : 2'b01;
      irq_st_q <= irq_st_q | ((err_i != 11'd0) ? 2'b10 : 2'b01);
    end
    if (!rst_ni) begin
      bvalid_q <= 1'b0;  start_o <= 1'b0;  irq_en_q <= 2'b00;  irq_st_q <= 2'b00;
      done_q <= 2'b00;  daddr_q <= 32'd0;  dcount_q <= 32'd0;
      job_q <= {(20*32){1'b0}};
    end
  end

  // ------------------------------------------------------------------------- read channel
  wire        ar_hs = s_axil_arvalid && (!rvalid_q || s_axil_rready);
  reg  [31:0] rd;

  always @* begin
    case (ridx32)
      32'd0:  rd = ID;
      32'd1:  rd = VERSION;
      32'd2:  rd = {29'd0, done_q, busy_i};
      32'd3:  rd = {21'd0, err_i};
      32'd4:  rd = {30'd0, irq_en_q};
      32'd5:  rd = {30'd0, irq_st_q};
      32'd6:  rd = jobs_i;
      32'd7:  rd = cycles_i;
      32'd8:  rd = core_cycles_i;
      32'd12: rd = ROWS;
      32'd13: rd = COLS;
      32'd14: rd = N;
      32'd15: rd = M;
      32'd16: rd = A_BITS;
      32'd17: rd = W_BITS;
      32'd18: rd = ACC_BITS;
      32'd19: rd = MULT_BITS;
      32'd20: rd = SHIFT_MAX;
      32'd21: rd = ACT_DEPTH;
      32'd22: rd = W_DEPTH;
      32'd23: rd = OUT_DEPTH;
      32'd24: rd = CH_DEPTH;
      32'd25: rd = Y_BITS;
      32'd26: rd = DATA_W;
      32'd27: rd = BURST_LEN;
      32'd28: rd = OUTSTANDING;
      32'd29: rd = 32'd128;
      32'd52: rd = daddr_q;
      32'd53: rd = dcount_q;
      default: rd = (ridx32 >= JOB0 && ridx32 < JOB0 + 20) ? job_q[(ridx32 - JOB0) * 32 +: 32] : 32'd0;
    endcase
  end

  always @(posedge clk_i) begin
    if (ar_hs) begin
      rvalid_q <= 1'b1;
      rslv_q   <= !r_in;
      rdata_q  <= r_in ? rd : 32'd0;
    end else if (s_axil_rready) begin
      rvalid_q <= 1'b0;
    end
    if (!rst_ni) begin
      rvalid_q <= 1'b0;
    end
  end

  assign s_axil_awready = w_hs;
  assign s_axil_wready  = w_hs;
  assign s_axil_bvalid  = bvalid_q;
  assign s_axil_bresp   = bslv_q ? 2'b10 : 2'b00;
  assign s_axil_arready = ar_hs;
  assign s_axil_rvalid  = rvalid_q;
  assign s_axil_rdata   = rdata_q;
  assign s_axil_rresp   = rslv_q ? 2'b10 : 2'b00;
  assign job_o          = job_q;
  assign desc_addr_o    = daddr_q;
  assign desc_count_o   = dcount_q;
  assign irq_o          = (irq_en_q & irq_st_q) != 2'b00;

endmodule

`default_nettype wire
