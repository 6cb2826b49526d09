// stream_mac: a small GEMM engine with AXI4-Stream ports whose frame format is simple enough to
// declare in a DUT file: the test DUT of t2c-sim's stream profile without an adapter
// (tests/duts/stream_mac/dut.yaml). One lane group per cycle; no cycle model (model: none).
//
// Input frame (32-bit beats; a word in bits 31:0):
//   7 words   rows P, K, C_out, flags (mode | a_signed << 2), z_y, lo, hi
//   C_out x 3 words   bias, M0, sh of each channel
//   C_out x ceil(K/4) beats   w rows: lane j (bits 8j+7:8j) = w[c][4b + j]
//   P x ceil(K/4) beats       x rows, likewise
// Output: per row, ceil(C_out/4) beats of four 8-bit lanes (lane j = the low 8 bits of
// y[p][4b + j]); tlast on the frame's last beat. The engine takes one x row, computes its C_out
// outputs (ceil(K/4) cycles each, then the 3-stage t2c_requant), sends them, takes the next
// row; s_axis_tready is low while it computes. Limits: C_out <= MAX_C, K <= 4 * MAX_KW.
`timescale 1ns / 1ps
`default_nettype none

module stream_mac #(
  parameter integer MAX_C  = 16,   // output channels
  parameter integer MAX_KW = 16    // words of a row (K <= 4 * MAX_KW)
) (
  input  wire        clk_i,
  input  wire        rst_ni,
  input  wire [31:0] s_axis_tdata,
  input  wire        s_axis_tvalid,
  output wire        s_axis_tready,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire        s_axis_tlast,     // the engine counts beats
  /* verilator lint_on UNUSEDSIGNAL */
  output reg  [31:0] m_axis_tdata,
  output reg         m_axis_tvalid,
  input  wire        m_axis_tready,
  output reg         m_axis_tlast
);

  localparam [2:0] S_DESC = 3'd0, S_PAR = 3'd1, S_W = 3'd2, S_X = 3'd3, S_MAC = 3'd4,
                   S_RQ = 3'd5, S_RW = 3'd6, S_OUT = 3'd7;
  localparam integer CB = $clog2(MAX_C);
  localparam integer KB = $clog2(MAX_KW);

  initial begin
    if (MAX_C < 2 || MAX_KW < 2 || (MAX_C & (MAX_C - 1)) != 0 || (MAX_KW & (MAX_KW - 1)) != 0) begin
      $fatal(1, "%m: MAX_C=%0d and MAX_KW=%0d must be powers of two >= 2", MAX_C, MAX_KW);
    end
  end

  reg  [2:0]  state_q;
  /* verilator lint_off UNUSEDSIGNAL */ // descriptor words: the low bits are used
  reg  [31:0] desc_q [0:6];
  reg  [31:0] i_q, c_q, j_q, p_q, nxw_q;
  /* verilator lint_on UNUSEDSIGNAL */
  reg  [31:0] bias_q [0:MAX_C-1];
  reg  [31:0] m0_q   [0:MAX_C-1];
  reg  [5:0]  sh_q   [0:MAX_C-1];
  reg  [31:0] w_q    [0:MAX_C*MAX_KW-1];
  reg  [31:0] x_q    [0:MAX_KW-1];
  reg  signed [31:0] acc_q;
  reg  [31:0] obuf_q;
  wire        fire = s_axis_tvalid && s_axis_tready;
  wire [31:0] xw = x_q[j_q[KB-1:0]];
  wire [31:0] ww = w_q[{c_q[CB-1:0], j_q[KB-1:0]}];
  wire [31:0] k_w = desc_q[1];
  wire [31:0] cols_w = desc_q[2];
  wire [2:0]  flags_w = desc_q[3][2:0];
  wire [31:0] bias_w = bias_q[c_q[CB-1:0]];
  wire [31:0] m0_w = m0_q[c_q[CB-1:0]];
  wire [5:0]  sh_w = sh_q[c_q[CB-1:0]];
  reg  signed [31:0] dot;
  wire        rq_valid;
  /* verilator lint_off UNUSEDSIGNAL */ // the lane carries the low 8 bits (lo/hi fit them)
  wire signed [15:0] rq_y;
  /* verilator lint_on UNUSEDSIGNAL */
  integer     l;

  assign s_axis_tready = state_q == S_DESC || state_q == S_PAR || state_q == S_W ||
                         state_q == S_X;

  always @* begin
    dot = (j_q == 32'd0) ? $signed(bias_w) : acc_q;
    for (l = 0; l < 4; l = l + 1) begin
      if (j_q * 4 + l < k_w) begin
        dot = dot + (flags_w[2] ? $signed({{24{xw[8*l+7]}}, xw[8*l +: 8]})
                                : $signed({24'd0, xw[8*l +: 8]}))
                  * $signed({{24{ww[8*l+7]}}, ww[8*l +: 8]});
      end
    end
  end

  t2c_requant #(.ACC_BITS(32), .MULT_BITS(32), .SHIFT_BITS(6), .Y_BITS(16), .PROFILES(0)) u_rq (
    .clk_i(clk_i), .rst_ni(rst_ni), .valid_i(state_q == S_RQ), .acc_i(acc_q), .m0_i(m0_w),
    .sh_i(sh_w), .zy_i(desc_q[4][15:0]), .lo_i(desc_q[5][15:0]), .hi_i(desc_q[6][15:0]),
    .mode_i({1'b0, flags_w[1:0]}), .valid_o(rq_valid), .y_o(rq_y)
  );

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      state_q <= S_DESC;
      i_q <= 32'd0;
      m_axis_tvalid <= 1'b0;
      m_axis_tlast <= 1'b0;
    end else begin
      case (state_q)
        S_DESC: if (fire) begin
          desc_q[i_q[2:0]] <= s_axis_tdata;
          i_q <= (i_q == 32'd6) ? 32'd0 : i_q + 32'd1;
          if (i_q == 32'd6) begin
            nxw_q <= (k_w + 32'd3) >> 2;   // K arrived with word 1
            c_q <= 32'd0;
            state_q <= S_PAR;
          end
        end
        S_PAR: if (fire) begin
          case (i_q[1:0])
            2'd0: bias_q[c_q[CB-1:0]] <= s_axis_tdata;
            2'd1: m0_q[c_q[CB-1:0]] <= s_axis_tdata;
            default: sh_q[c_q[CB-1:0]] <= s_axis_tdata[5:0];
          endcase
          i_q <= (i_q == 32'd2) ? 32'd0 : i_q + 32'd1;
          if (i_q == 32'd2) begin
            c_q <= (c_q + 32'd1 == cols_w) ? 32'd0 : c_q + 32'd1;
            if (c_q + 32'd1 == cols_w) begin
              j_q <= 32'd0;
              state_q <= S_W;
            end
          end
        end
        S_W: if (fire) begin
          w_q[{c_q[CB-1:0], j_q[KB-1:0]}] <= s_axis_tdata;
          j_q <= (j_q + 32'd1 == nxw_q) ? 32'd0 : j_q + 32'd1;
          if (j_q + 32'd1 == nxw_q) begin
            c_q <= c_q + 32'd1;
            if (c_q + 32'd1 == cols_w) begin
              p_q <= 32'd0;
              state_q <= S_X;
            end
          end
        end
        S_X: if (fire) begin
          x_q[j_q[KB-1:0]] <= s_axis_tdata;
          j_q <= (j_q + 32'd1 == nxw_q) ? 32'd0 : j_q + 32'd1;
          if (j_q + 32'd1 == nxw_q) begin
            c_q <= 32'd0;
            obuf_q <= 32'd0;
            state_q <= S_MAC;
          end
        end
        S_MAC: begin
          acc_q <= dot;
          j_q <= (j_q + 32'd1 == nxw_q) ? 32'd0 : j_q + 32'd1;
          if (j_q + 32'd1 == nxw_q) state_q <= S_RQ;
        end
        S_RQ: state_q <= S_RW;
        S_RW: if (rq_valid) begin
          obuf_q[8*c_q[1:0] +: 8] <= rq_y[7:0];
          if (c_q[1:0] == 2'd3 || c_q + 32'd1 == cols_w) begin
            m_axis_tdata <= obuf_q;
            m_axis_tdata[8*c_q[1:0] +: 8] <= rq_y[7:0];
            m_axis_tvalid <= 1'b1;
            m_axis_tlast <= c_q + 32'd1 == cols_w && p_q + 32'd1 == desc_q[0];
            state_q <= S_OUT;
          end else begin
            c_q <= c_q + 32'd1;
            state_q <= S_MAC;
          end
        end
        default: if (m_axis_tready) begin  // S_OUT: the beat is taken
          m_axis_tvalid <= 1'b0;
          m_axis_tlast <= 1'b0;
          obuf_q <= 32'd0;
          if (c_q + 32'd1 < cols_w) begin
            c_q <= c_q + 32'd1;
            state_q <= S_MAC;
          end else if (p_q + 32'd1 < desc_q[0]) begin
            p_q <= p_q + 32'd1;
            state_q <= S_X;
          end else begin
            state_q <= S_DESC;
          end
        end
      endcase
    end
  end

endmodule

`default_nettype wire
