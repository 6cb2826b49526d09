// t2c_ram: simple dual-port scratchpad RAM (one write port, one synchronous read port).
//
//   write: mem_q[waddr_i] <= wdata_i when we_i          (at the rising edge)
//   read:  rdata_o        <= mem_q[raddr_i] when re_i   (registered: data one cycle after the
//                                                        address; held while re_i is low)
//
// A read of the address written in the same cycle returns the old word (read-first). Reads
// past DEPTH are the caller's error (the accelerator's shape checks prevent them). The array is
// named mem_q so that simulation harnesses can load it in bulk ($readmemh) by hierarchical name.
`timescale 1ns / 1ps
`default_nettype none

module t2c_ram #(
  parameter integer WIDTH = 8,  // word width in bits, >= 1
  parameter integer DEPTH = 16  // number of words, >= 1
) (
  input  wire                            clk_i,
  input  wire                            we_i,
  input  wire                            re_i,
  input  wire [((DEPTH > 1) ? $clog2(DEPTH) : 1)-1:0] waddr_i,
  input  wire [WIDTH-1:0]                wdata_i,
  input  wire [((DEPTH > 1) ? $clog2(DEPTH) : 1)-1:0] raddr_i,
  output wire [WIDTH-1:0]                rdata_o
);

  initial begin
    if (WIDTH < 1 || DEPTH < 1) begin
      $fatal(1, "%m: WIDTH=%0d and DEPTH=%0d must be >= 1", WIDTH, DEPTH);
    end
  end

  reg [WIDTH-1:0] mem_q [0:DEPTH-1];
  reg [WIDTH-1:0] rdata_q;

  always @(posedge clk_i) begin
    if (we_i) begin
      mem_q[waddr_i] <= wdata_i;
    end
    if (re_i) begin
      rdata_q <= mem_q[raddr_i];
    end
  end

  assign rdata_o = rdata_q;

endmodule

`default_nettype wire
