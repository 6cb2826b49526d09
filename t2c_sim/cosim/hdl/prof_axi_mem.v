// prof_axi_mem: AXI4 slave memory model of the axi profile (simulation only).
//
// DEPTH words of DATA_BITS bits, word w at byte address w * DATA_BITS/8. The harness loads
// the memory in bulk ($readmemh into mem_q, zero simulation time) and dumps the results with
// $writememh: no Python runs per beat.
//
// Protocol (one read and one write transaction in flight, independently):
// * AR: arready is high while no read is in progress (from the edge after reset, and again from
//   the edge of a burst's last R handshake: a new AR can be accepted on the next edge). A burst (INCR; FIXED and WRAP are read
//   as INCR) of arlen+1 full-width beats starting at the word of araddr. The first R beat is
//   valid READ_LATENCY cycles after the cycle of the AR handshake (handshake edge E: rvalid is
//   high from edge E + READ_LATENCY, the first R handshake at edge E + READ_LATENCY + 1 at
//   the earliest), then one beat per cycle while rready is high; rlast on the last beat.
// * AW/W/B: awready is high while no write is in progress (again from the edge of the B
//   handshake); wready is high from the edge after
//   the AW handshake until the beat with wlast (W beats before AW wait: the slave may do so);
//   each W handshake writes the bytes wstrb enables. bvalid rises WRITE_LATENCY cycles after
//   the cycle of the last W handshake.
// * Narrow transfers (size below the bus width) are treated as full-width beats at the word
//   of the address (document the DUT's accesses accordingly).
// * An access beyond DEPTH words answers SLVERR (resp 2), writes nothing, reads 0 and sets the
//   sticky err_o (the harness fails the frame, naming the address in addr_err_o).
`timescale 1ns / 1ps
`default_nettype none

module prof_axi_mem #(
  parameter integer DATA_BITS     = 64,    // data bus width (a power of two, >= 8)
  parameter integer ADDR_BITS     = 32,    // address width
  parameter integer ID_BITS       = 1,     // ID width (ids are echoed)
  parameter integer DEPTH         = 4096,  // words
  parameter integer READ_LATENCY  = 1,     // cycles from the AR handshake to the first R beat (>= 1)
  parameter integer WRITE_LATENCY = 1      // cycles from the last W handshake to B (>= 1)
) (
  input  wire                   clk_i,
  input  wire                   rst_ni,
  input  wire [ID_BITS-1:0]     awid_i,
  input  wire [ADDR_BITS-1:0]   awaddr_i,
  /* verilator lint_off UNUSEDSIGNAL */ // a write burst ends at wlast
  input  wire [7:0]             awlen_i,
  /* verilator lint_on UNUSEDSIGNAL */
  input  wire                   awvalid_i,
  output reg                    awready_o,
  input  wire [DATA_BITS-1:0]   wdata_i,
  input  wire [DATA_BITS/8-1:0] wstrb_i,
  input  wire                   wlast_i,
  input  wire                   wvalid_i,
  output reg                    wready_o,
  output reg  [ID_BITS-1:0]     bid_o,
  output reg  [1:0]             bresp_o,
  output reg                    bvalid_o,
  input  wire                   bready_i,
  input  wire [ID_BITS-1:0]     arid_i,
  input  wire [ADDR_BITS-1:0]   araddr_i,
  input  wire [7:0]             arlen_i,
  input  wire                   arvalid_i,
  output reg                    arready_o,
  output reg  [ID_BITS-1:0]     rid_o,
  output reg  [DATA_BITS-1:0]   rdata_o,
  output reg  [1:0]             rresp_o,
  output reg                    rlast_o,
  output reg                    rvalid_o,
  input  wire                   rready_i,
  output reg                    err_o,       // sticky: an access beyond DEPTH words
  output reg  [ADDR_BITS-1:0]   addr_err_o,  // its byte address
  output reg  [31:0]            reads_o,     // R beats served (progress, for the watchdog)
  output reg  [31:0]            writes_o     // W beats taken
);

  localparam integer NB  = DATA_BITS / 8;
  localparam integer SH  = $clog2(NB);

  reg [DATA_BITS-1:0] mem_q [0:DEPTH-1];

  // read channel
  reg [1:0]          rst_q;       // 0 idle, 1 latency, 2 data
  reg [ADDR_BITS-1:0] rword_q;
  reg [7:0]          rleft_q;
  reg [31:0]         rwait_q;
  // write channel
  reg [1:0]          wst_q;       // 0 idle, 1 data, 2 latency, 3 response
  reg [ADDR_BITS-1:0] wword_q;
  reg [31:0]         wwait_q;
  reg                wbad_q;
  integer            b;

  function [DATA_BITS-1:0] rd;
    input [ADDR_BITS-1:0] word;
    begin
      rd = (word < DEPTH) ? mem_q[word[$clog2(DEPTH)-1:0]] : {DATA_BITS{1'b0}};
    end
  endfunction

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      rst_q <= 2'd0; arready_o <= 1'b0; rvalid_o <= 1'b0; rlast_o <= 1'b0;
      wst_q <= 2'd0; awready_o <= 1'b0; wready_o <= 1'b0; bvalid_o <= 1'b0;
      err_o <= 1'b0; reads_o <= 32'd0; writes_o <= 32'd0;
    end else begin
      // ------------------------------------------------------------------ read
      case (rst_q)
        2'd0: begin
          arready_o <= 1'b1;
          if (arvalid_i && arready_o) begin
            arready_o <= 1'b0;
            rid_o     <= arid_i;
            rword_q   <= araddr_i >> SH;
            rleft_q   <= arlen_i;
            rwait_q   <= READ_LATENCY - 1;
            rst_q     <= 2'd1;
          end
        end
        2'd1: begin
          if (rwait_q == 32'd0) begin
            rvalid_o <= 1'b1;
            rdata_o  <= rd(rword_q);
            rresp_o  <= (rword_q < DEPTH) ? 2'd0 : 2'd2;
            rlast_o  <= rleft_q == 8'd0;
            if (rword_q >= DEPTH && !err_o) begin
              err_o      <= 1'b1;
              addr_err_o <= rword_q << SH;
            end
            rst_q    <= 2'd2;
          end else begin
            rwait_q <= rwait_q - 32'd1;
          end
        end
        default: begin
          if (rvalid_o && rready_i) begin
            reads_o <= reads_o + 32'd1;
            if (rleft_q == 8'd0) begin
              rvalid_o  <= 1'b0;
              rlast_o   <= 1'b0;
              arready_o <= 1'b1;
              rst_q     <= 2'd0;
            end else begin
              rword_q  <= rword_q + 1'b1;
              rleft_q  <= rleft_q - 8'd1;
              rdata_o  <= rd(rword_q + 1'b1);
              rresp_o  <= (rword_q + 1'b1 < DEPTH) ? 2'd0 : 2'd2;
              rlast_o  <= rleft_q == 8'd1;
              if (rword_q + 1'b1 >= DEPTH && !err_o) begin
                err_o      <= 1'b1;
                addr_err_o <= (rword_q + 1'b1) << SH;
              end
            end
          end
        end
      endcase
      // ------------------------------------------------------------------ write
      case (wst_q)
        2'd0: begin
          awready_o <= 1'b1;
          if (awvalid_i && awready_o) begin
            awready_o <= 1'b0;
            wready_o  <= 1'b1;
            bid_o     <= awid_i;
            wword_q   <= awaddr_i >> SH;
            wbad_q    <= 1'b0;
            wst_q     <= 2'd1;
          end
        end
        2'd1: begin
          if (wvalid_i && wready_o) begin
            writes_o <= writes_o + 32'd1;
            if (wword_q < DEPTH) begin
              for (b = 0; b < NB; b = b + 1) begin
                if (wstrb_i[b]) mem_q[wword_q[$clog2(DEPTH)-1:0]][8*b +: 8] <= wdata_i[8*b +: 8];
              end
            end else begin
              wbad_q <= 1'b1;
              if (!err_o) begin
                err_o      <= 1'b1;
                addr_err_o <= wword_q << SH;
              end
            end
            wword_q <= wword_q + 1'b1;
            if (wlast_i) begin
              wready_o <= 1'b0;
              wwait_q  <= WRITE_LATENCY - 1;
              wst_q    <= 2'd2;
            end
          end
        end
        2'd2: begin
          if (wwait_q == 32'd0) begin
            bvalid_o <= 1'b1;
            bresp_o  <= wbad_q ? 2'd2 : 2'd0;
            wst_q    <= 2'd3;
          end else begin
            wwait_q <= wwait_q - 32'd1;
          end
        end
        default: begin
          if (bvalid_o && bready_i) begin
            bvalid_o  <= 1'b0;
            awready_o <= 1'b1;
            wst_q     <= 2'd0;
          end
        end
      endcase
    end
  end

endmodule

`default_nettype wire
