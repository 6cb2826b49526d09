// prof_axil_master: AXI4-Lite master playing register programs, for the axi profile
// (simulation only).
//
// The program memory (PROG_DEPTH operations of four 32-bit words: op, addr, data, mask) is
// loaded in bulk from the file named by +AXIL_PROG=<file>. A program starts at operation pc_i
// when start_i is high at a rising edge (while idle) and runs until an END operation:
//
//   op 0 END                       the program is done (done_o until the next start)
//   op 1 WRITE addr data           awvalid and wvalid rise together (wstrb all ones); bready is
//                                  high; the next operation is fetched on the edge of the B
//                                  handshake and issued on the edge after it
//   op 2 READ  addr                arvalid; rready high; the data is reported (rd_valid_o)
//   op 3 POLL  addr data mask      READ until (rdata & mask) == data (re-issued on the edge
//                                  after each R handshake); complete_o on the matching one
//   op 4 WAIT                      until signal_i (the DUT's interrupt or done) is high at an
//                                  edge; complete_o at that edge
//
// Every operation takes one fetch edge before its bus activity: a WRITE issued at fetch edge F
// has its AW/W valid from edge F and, with a slave ready at once, its AW/W handshakes at F+1.
// complete_o is combinational: high during the cycle whose closing edge completes the WAIT or
// the matching POLL, so a harness sampling it at that edge sees the completion's own edge.
`timescale 1ns / 1ps
`default_nettype none

module prof_axil_master #(
  parameter integer ADDR_BITS  = 12,    // AXI4-Lite address width
  parameter integer PROG_DEPTH = 4096   // operations the program memory holds
) (
  input  wire                 clk_i,
  input  wire                 rst_ni,
  input  wire                 start_i,
  input  wire [31:0]          pc_i,        // first operation of the program
  input  wire                 signal_i,
  output reg                  done_o,
  output wire                 complete_o,
  output reg                  rd_valid_o,   // one cycle: a READ/POLL returned rd_data_o
  output reg  [31:0]          rd_data_o,
  output reg  [31:0]          rd_pc_o,
  output reg  [31:0]          ops_o,        // operations completed (progress, for the watchdog)
  output reg                  resp_err_o,   // sticky: a B or R response other than OKAY
  output reg  [ADDR_BITS-1:0] awaddr_o,
  output reg                  awvalid_o,
  input  wire                 awready_i,
  output reg  [31:0]          wdata_o,
  output wire [3:0]           wstrb_o,
  output reg                  wvalid_o,
  input  wire                 wready_i,
  input  wire [1:0]           bresp_i,
  input  wire                 bvalid_i,
  output wire                 bready_o,
  output reg  [ADDR_BITS-1:0] araddr_o,
  output reg                  arvalid_o,
  input  wire                 arready_i,
  input  wire [31:0]          rdata_i,
  input  wire [1:0]           rresp_i,
  input  wire                 rvalid_i,
  output wire                 rready_o
);

  localparam [2:0] S_IDLE = 3'd0, S_FETCH = 3'd1, S_WR = 3'd2, S_RD = 3'd3, S_WT = 3'd4;

  reg [31:0] prog_q [0:4*PROG_DEPTH-1];
  reg [1023:0] file_q;
  reg [2:0]  state_q;
  reg [31:0] pc_q, op_q, data_q, mask_q;   // set at start and at each fetch

  wire [31:0] base = {pc_q[29:0], 2'b00};
  wire        rfire = rvalid_i && rready_o;
  wire        match = (rdata_i & mask_q) == data_q;

  assign wstrb_o    = 4'hf;
  assign bready_o   = state_q == S_WR;
  assign rready_o   = state_q == S_RD;
  assign complete_o = (state_q == S_WT && signal_i) ||
                      (state_q == S_RD && op_q == 32'd3 && rfire && match);

  initial begin
    if ($value$plusargs("AXIL_PROG=%s", file_q)) begin
      $readmemh(file_q, prog_q);
    end
  end

  always @(posedge clk_i) begin
    rd_valid_o <= 1'b0;
    if (!rst_ni) begin
      state_q   <= S_IDLE;
      awvalid_o <= 1'b0;
      wvalid_o  <= 1'b0;
      arvalid_o <= 1'b0;
      done_o    <= 1'b0;
      ops_o     <= 32'd0;
      resp_err_o <= 1'b0;
    end else begin
      case (state_q)
        S_IDLE: if (start_i) begin
          pc_q    <= pc_i;
          done_o  <= 1'b0;
          state_q <= S_FETCH;
        end
        S_FETCH: begin
          op_q   <= prog_q[base];
          data_q <= prog_q[base + 32'd2];
          mask_q <= prog_q[base + 32'd3];
          case (prog_q[base])
            32'd1: begin
              awaddr_o  <= prog_q[base + 32'd1][ADDR_BITS-1:0];
              wdata_o   <= prog_q[base + 32'd2];
              awvalid_o <= 1'b1;
              wvalid_o  <= 1'b1;
              state_q   <= S_WR;
            end
            32'd2, 32'd3: begin
              araddr_o  <= prog_q[base + 32'd1][ADDR_BITS-1:0];
              arvalid_o <= 1'b1;
              state_q   <= S_RD;
            end
            32'd4: state_q <= S_WT;
            default: begin  // END (and any unknown code)
              done_o  <= 1'b1;
              state_q <= S_IDLE;
            end
          endcase
        end
        S_WR: begin
          if (awvalid_o && awready_i) awvalid_o <= 1'b0;
          if (wvalid_o && wready_i) wvalid_o <= 1'b0;
          if (bvalid_i) begin  // bready is high in this state
            if (bresp_i != 2'd0) resp_err_o <= 1'b1;
            pc_q    <= pc_q + 32'd1;
            ops_o   <= ops_o + 32'd1;
            state_q <= S_FETCH;
          end
        end
        S_RD: begin
          if (arvalid_o && arready_i) arvalid_o <= 1'b0;
          if (rfire) begin
            if (rresp_i != 2'd0) resp_err_o <= 1'b1;
            rd_valid_o <= 1'b1;
            rd_data_o  <= rdata_i;
            rd_pc_o    <= pc_q;
            if (op_q != 32'd3 || match) begin
              pc_q  <= pc_q + 32'd1;
              ops_o <= ops_o + 32'd1;
            end
            state_q <= S_FETCH;
          end
        end
        default: if (signal_i) begin  // S_WT
          pc_q    <= pc_q + 32'd1;
          ops_o   <= ops_o + 32'd1;
          state_q <= S_FETCH;
        end
      endcase
    end
  end

endmodule

`default_nettype wire
