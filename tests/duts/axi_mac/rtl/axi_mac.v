// axi_mac: a small GEMM engine behind an AXI4-Lite register block and an AXI4 master: the test
// DUT of t2c-sim's axi profile (tests/test_dut_axi.py). One multiply-accumulate lane group at a
// time, as a third party's first front door would be; the cycle model is cycle_model.py.
//
// Computes, for p < ROWS, c < COLS (registers), with K the reduction length:
//   acc[p][c] = wrap_ACC_BITS(bias[c] + sum_k x[p][k] * w[c][k])
//   y[p][c]   = clamp(z_y + round_shift(acc * M0[c], sh[c], mode), lo, hi)      (t2c_requant)
//
// Registers (32-bit, byte addresses):
//   0x00 CTRL   W: bit 0 = start            0x04 STATUS R: done, busy, err; W: bit 0 clears done
//   0x08 ROWS   0x0C K   0x10 COLS          0x14 FLAGS [1:0] mode, [2] activations signed
//   0x18 ZY     0x1C LO  0x20 HI            (signed, low Y_BITS used)
//   0x24 XA  0x28 WA  0x2C BA  0x30 MA  0x34 SA  0x38 YA      operand base addresses
//   0x3C XS  0x40 WS  0x44 YS               row strides (bytes) of x, w and y
//   0x48 CYCLES R: cycles of the last job (start write .. done)
// Memory (32-bit words): x[p] and w[c] rows of int8, four per word (lane j = byte j); bias, M0
// and sh one 32-bit word per channel; y one 32-bit word per output (sign-extended Y_BITS).
// irq_o is high from the end of a job until STATUS bit 0 is written. A job with ROWS, K or COLS
// zero, or K > MAX_K, sets err and ends at once.
//
// Schedule (a read issued at edge a: AR handshake at a+1, beats from a+READ_LATENCY+2; a write
// issued at edge a: AW at a+1, W at a+2, B at a+WRITE_LATENCY+3): per row, one burst of the x
// row into a buffer; per channel, single reads of bias, M0 and sh, a burst of the w row (one
// lane group multiplied per beat), the requantizer (3 stages) and a single write of y. Every
// next transfer is issued on the edge that ends the previous one.
`timescale 1ns / 1ps
`default_nettype none

module axi_mac #(
  parameter integer MAX_K     = 256,   // longest reduction (x row buffer: MAX_K/4 words)
  parameter integer ACC_BITS  = 32,    // accumulator width (wraps)
  parameter integer MULT_BITS = 32,    // M0 width
  parameter integer Y_BITS    = 16     // output width (signed)
) (
  input  wire        clk_i,
  input  wire        rst_ni,
  // AXI4-Lite slave
  input  wire [7:0]  s_axil_awaddr,
  input  wire        s_axil_awvalid,
  output wire        s_axil_awready,
  input  wire [31:0] s_axil_wdata,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire [3:0]  s_axil_wstrb,     // full-word registers: strobes ignored
  /* verilator lint_on UNUSEDSIGNAL */
  input  wire        s_axil_wvalid,
  output wire        s_axil_wready,
  output wire [1:0]  s_axil_bresp,
  output reg         s_axil_bvalid,
  input  wire        s_axil_bready,
  input  wire [7:0]  s_axil_araddr,
  input  wire        s_axil_arvalid,
  output wire        s_axil_arready,
  output reg  [31:0] s_axil_rdata,
  output wire [1:0]  s_axil_rresp,
  output reg         s_axil_rvalid,
  input  wire        s_axil_rready,
  // AXI4 master (32-bit data, no IDs)
  output reg  [31:0] m_axi_araddr,
  output reg  [7:0]  m_axi_arlen,
  output wire [2:0]  m_axi_arsize,
  output wire [1:0]  m_axi_arburst,
  output reg         m_axi_arvalid,
  input  wire        m_axi_arready,
  input  wire [31:0] m_axi_rdata,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire [1:0]  m_axi_rresp,      // the model's SLVERR shows up in the harness
  input  wire        m_axi_rlast,      // beats are counted
  input  wire [1:0]  m_axi_bresp,
  /* verilator lint_on UNUSEDSIGNAL */
  input  wire        m_axi_rvalid,
  output wire        m_axi_rready,
  output reg  [31:0] m_axi_awaddr,
  output wire [7:0]  m_axi_awlen,
  output wire [2:0]  m_axi_awsize,
  output wire [1:0]  m_axi_awburst,
  output reg         m_axi_awvalid,
  input  wire        m_axi_awready,
  output reg  [31:0] m_axi_wdata,
  output wire [3:0]  m_axi_wstrb,
  output wire        m_axi_wlast,
  output reg         m_axi_wvalid,
  input  wire        m_axi_wready,
  input  wire        m_axi_bvalid,
  output wire        m_axi_bready,
  output reg         irq_o
);

  localparam integer XW = MAX_K / 4;                    // x buffer words
  localparam [3:0] S_IDLE = 4'd0, S_XI = 4'd1, S_XR = 4'd2, S_BR = 4'd4,
                   S_MR = 4'd5, S_SR = 4'd6, S_WR = 4'd7, S_RQ = 4'd8, S_RW = 4'd9,
                   S_YW = 4'd10;

  initial begin
    if (MAX_K < 4 || MAX_K % 4 != 0 || MAX_K > 1024) begin
      $fatal(1, "%m: MAX_K=%0d must be a multiple of 4 in 4..1024", MAX_K);
    end
  end

  // ---------------------------------------------------------------- registers
  /* verilator lint_off UNUSEDSIGNAL */ // 32-bit registers; flags and z_y/lo/hi use the low bits
  reg  [31:0] rows_q, k_q, cols_q, flags_q, zy_q, lo_q, hi_q, xa_q, wa_q, ba_q, ma_q, sa_q;
  /* verilator lint_on UNUSEDSIGNAL */
  reg  [31:0] ya_q, xs_q, ws_q, ys_q, cyc_q, cnt_q;
  reg         done_q, err_q;
  reg  [3:0]  state_q;
  wire        busy = state_q != S_IDLE;
  wire        wfire = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
  wire        start = wfire && s_axil_awaddr == 8'h00 && s_axil_wdata[0] && !busy;

  assign s_axil_awready = wfire;
  assign s_axil_wready  = wfire;
  assign s_axil_bresp   = 2'd0;
  assign s_axil_arready = !s_axil_rvalid;
  assign s_axil_rresp   = 2'd0;

  // ---------------------------------------------------------------- datapath state
  reg  [31:0] xbuf_q [0:XW-1];
  reg  [31:0] p_q, c_q, beat_q, nxw_q;
  reg  signed [ACC_BITS-1:0] acc_q;
  reg  [MULT_BITS-1:0] m0_q;
  reg  [5:0]  sh_q;
  wire        rfire = m_axi_rvalid && m_axi_rready;
  wire        rq_valid;
  wire signed [Y_BITS-1:0] rq_y;
  reg  signed [ACC_BITS-1:0] mac;
  wire [31:0] xcur = xbuf_q[beat_q[$clog2(XW)-1:0]];  // the buffered x word of this beat
  integer     j;

  assign m_axi_arsize  = 3'd2;
  assign m_axi_arburst = 2'd1;
  assign m_axi_rready  = state_q == S_XR || state_q == S_BR || state_q == S_MR ||
                         state_q == S_SR || state_q == S_WR;
  assign m_axi_awlen   = 8'd0;
  assign m_axi_awsize  = 3'd2;
  assign m_axi_awburst = 2'd1;
  assign m_axi_wstrb   = 4'hf;
  assign m_axi_wlast   = 1'b1;
  assign m_axi_bready  = state_q == S_YW;

  // one lane group of x (buffered) times the w beat arriving now, lanes k < K only
  always @* begin
    mac = acc_q;
    for (j = 0; j < 4; j = j + 1) begin
      if (beat_q * 4 + j < k_q) begin
        mac = mac + (flags_q[2] ? $signed({{(ACC_BITS-8){xcur[8*j+7]}}, xcur[8*j +: 8]})
                                : $signed({{(ACC_BITS-8){1'b0}}, xcur[8*j +: 8]}))
                  * $signed({{(ACC_BITS-8){m_axi_rdata[8*j+7]}}, m_axi_rdata[8*j +: 8]});
      end
    end
  end

  t2c_requant #(.ACC_BITS(ACC_BITS), .MULT_BITS(MULT_BITS), .SHIFT_BITS(6), .Y_BITS(Y_BITS),
                .PROFILES(0)) u_rq (
    .clk_i(clk_i), .rst_ni(rst_ni), .valid_i(state_q == S_RQ), .acc_i(acc_q), .m0_i(m0_q),
    .sh_i(sh_q), .zy_i(zy_q[Y_BITS-1:0]), .lo_i(lo_q[Y_BITS-1:0]), .hi_i(hi_q[Y_BITS-1:0]),
    .mode_i({1'b0, flags_q[1:0]}), .valid_o(rq_valid), .y_o(rq_y)
  );

  // ---------------------------------------------------------------- control (one process)
  always @(posedge clk_i) begin
    if (!rst_ni) begin
      state_q <= S_IDLE; done_q <= 1'b0; err_q <= 1'b0; irq_o <= 1'b0;
      s_axil_bvalid <= 1'b0; s_axil_rvalid <= 1'b0;
      m_axi_arvalid <= 1'b0; m_axi_awvalid <= 1'b0; m_axi_wvalid <= 1'b0;
      cyc_q <= 32'd0; cnt_q <= 32'd0;
    end else begin
      // register block
      if (wfire) begin
        s_axil_bvalid <= 1'b1;
        case (s_axil_awaddr)
          8'h04: if (s_axil_wdata[0]) begin done_q <= 1'b0; irq_o <= 1'b0; end
          8'h08: rows_q <= s_axil_wdata;   8'h0C: k_q <= s_axil_wdata;
          8'h10: cols_q <= s_axil_wdata;   8'h14: flags_q <= s_axil_wdata;
          8'h18: zy_q <= s_axil_wdata;     8'h1C: lo_q <= s_axil_wdata;
          8'h20: hi_q <= s_axil_wdata;     8'h24: xa_q <= s_axil_wdata;
          8'h28: wa_q <= s_axil_wdata;     8'h2C: ba_q <= s_axil_wdata;
          8'h30: ma_q <= s_axil_wdata;     8'h34: sa_q <= s_axil_wdata;
          8'h38: ya_q <= s_axil_wdata;     8'h3C: xs_q <= s_axil_wdata;
          8'h40: ws_q <= s_axil_wdata;     8'h44: ys_q <= s_axil_wdata;
          default: ;
        endcase
      end else if (s_axil_bvalid && s_axil_bready) begin
        s_axil_bvalid <= 1'b0;
      end
      if (s_axil_arvalid && !s_axil_rvalid) begin
        s_axil_rvalid <= 1'b1;
        case (s_axil_araddr)
          8'h04:   s_axil_rdata <= {29'd0, err_q, busy, done_q};
          8'h48:   s_axil_rdata <= cyc_q;
          default: s_axil_rdata <= 32'd0;
        endcase
      end else if (s_axil_rvalid && s_axil_rready) begin
        s_axil_rvalid <= 1'b0;
      end
      if (busy) cnt_q <= cnt_q + 32'd1;
      // job
      case (state_q)
        S_IDLE: if (start) begin
          done_q <= 1'b0; irq_o <= 1'b0; cnt_q <= 32'd1;
          p_q <= 32'd0; c_q <= 32'd0; nxw_q <= (k_q + 32'd3) >> 2;
          if (rows_q == 32'd0 || k_q == 32'd0 || cols_q == 32'd0 || k_q > MAX_K) begin
            err_q <= 1'b1; done_q <= 1'b1; irq_o <= 1'b1;
          end else begin
            err_q <= 1'b0;
            state_q <= S_XI;
          end
        end
        S_XI: begin  // issue the x row burst
          m_axi_araddr <= xa_q + p_q * xs_q; m_axi_arlen <= nxw_q[7:0] - 8'd1;
          m_axi_arvalid <= 1'b1; beat_q <= 32'd0; state_q <= S_XR;
        end
        S_XR: begin
          if (m_axi_arvalid && m_axi_arready) m_axi_arvalid <= 1'b0;
          if (rfire) begin
            xbuf_q[beat_q[$clog2(XW)-1:0]] <= m_axi_rdata;
            beat_q <= beat_q + 32'd1;
            if (beat_q + 32'd1 == nxw_q) begin  // issue the bias read
              m_axi_araddr <= ba_q + (c_q << 2); m_axi_arlen <= 8'd0; m_axi_arvalid <= 1'b1;
              state_q <= S_BR;
            end
          end
        end
        S_BR: begin
          if (m_axi_arvalid && m_axi_arready) m_axi_arvalid <= 1'b0;
          if (rfire) begin
            acc_q <= m_axi_rdata[ACC_BITS-1:0];
            m_axi_araddr <= ma_q + (c_q << 2); m_axi_arvalid <= 1'b1; state_q <= S_MR;
          end
        end
        S_MR: begin
          if (m_axi_arvalid && m_axi_arready) m_axi_arvalid <= 1'b0;
          if (rfire) begin
            m0_q <= m_axi_rdata[MULT_BITS-1:0];
            m_axi_araddr <= sa_q + (c_q << 2); m_axi_arvalid <= 1'b1; state_q <= S_SR;
          end
        end
        S_SR: begin
          if (m_axi_arvalid && m_axi_arready) m_axi_arvalid <= 1'b0;
          if (rfire) begin
            sh_q <= m_axi_rdata[5:0];
            m_axi_araddr <= wa_q + c_q * ws_q; m_axi_arlen <= nxw_q[7:0] - 8'd1;
            m_axi_arvalid <= 1'b1; beat_q <= 32'd0; state_q <= S_WR;
          end
        end
        S_WR: begin
          if (m_axi_arvalid && m_axi_arready) m_axi_arvalid <= 1'b0;
          if (rfire) begin
            acc_q <= mac;
            beat_q <= beat_q + 32'd1;
            if (beat_q + 32'd1 == nxw_q) state_q <= S_RQ;
          end
        end
        S_RQ: state_q <= S_RW;   // the requantizer samples acc at this edge
        S_RW: if (rq_valid) begin
          m_axi_awaddr <= ya_q + p_q * ys_q + (c_q << 2);
          m_axi_wdata <= {{(32-Y_BITS){rq_y[Y_BITS-1]}}, rq_y};
          m_axi_awvalid <= 1'b1; m_axi_wvalid <= 1'b1; state_q <= S_YW;
        end
        default: begin  // S_YW
          if (m_axi_awvalid && m_axi_awready) m_axi_awvalid <= 1'b0;
          if (m_axi_wvalid && m_axi_wready) m_axi_wvalid <= 1'b0;
          if (m_axi_bvalid) begin  // bready is high in this state
            if (c_q + 32'd1 < cols_q) begin
              c_q <= c_q + 32'd1;
              m_axi_araddr <= ba_q + ((c_q + 32'd1) << 2); m_axi_arlen <= 8'd0;
              m_axi_arvalid <= 1'b1; state_q <= S_BR;
            end else if (p_q + 32'd1 < rows_q) begin
              c_q <= 32'd0; p_q <= p_q + 32'd1;
              m_axi_araddr <= xa_q + (p_q + 32'd1) * xs_q; m_axi_arlen <= nxw_q[7:0] - 8'd1;
              m_axi_arvalid <= 1'b1; beat_q <= 32'd0; state_q <= S_XR;
            end else begin
              done_q <= 1'b1; irq_o <= 1'b1; cyc_q <= cnt_q; state_q <= S_IDLE;
            end
          end
        end
      endcase
    end
  end

endmodule

`default_nettype wire
