// t2c_axi_burst: length of the next AXI4 INCR burst of a transfer (combinational).
//
//   len_o = min(left_i, BURST_LEN - ((addr_i / BYTES) mod BURST_LEN)),   BYTES = DATA_W / 8
//
// A transfer of `left_i` beats starting at byte address `addr_i` (aligned to BYTES) is cut into
// bursts that end at the next multiple of BURST_LEN * BYTES bytes (or at the end of the
// transfer). BURST_LEN * BYTES divides 4096, so no burst crosses a 4 KB boundary (AXI4 rule),
// and a transfer that starts on such a multiple is cut into full bursts of BURST_LEN beats plus
// one shorter last burst. Example: BURST_LEN = 4, BYTES = 8, a transfer of 7 beats at 0x10
// (beat 2 of a 32-byte window) is cut into bursts of 2, 4 and 1 beats.
`timescale 1ns / 1ps
`default_nettype none

module t2c_axi_burst #(
  parameter integer ADDR_W    = 32,  // byte address width
  parameter integer DATA_W    = 64,  // AXI data width in bits (power of two, 32..1024)
  parameter integer BURST_LEN = 16   // longest burst in beats (power of two, 1..256)
) (
  /* verilator lint_off UNUSEDSIGNAL */ // only the beat index within a burst window matters
  input  wire [ADDR_W-1:0] addr_i,   // byte address of the burst's first beat
  /* verilator lint_on UNUSEDSIGNAL */
  input  wire [31:0]       left_i,   // beats left in the transfer (>= 1)
  output wire [8:0]        len_o     // beats of the burst, 1..BURST_LEN
);

  localparam integer SZ = $clog2(DATA_W / 8);
  localparam integer LB = (BURST_LEN > 1) ? $clog2(BURST_LEN) : 1;

  initial begin
    if (BURST_LEN < 1 || BURST_LEN > 256 || (BURST_LEN & (BURST_LEN - 1)) != 0) begin
      $fatal(1, "%m: BURST_LEN=%0d must be a power of two in 1..256", BURST_LEN);
    end
    if (DATA_W < 32 || DATA_W > 1024 || (DATA_W & (DATA_W - 1)) != 0) begin
      $fatal(1, "%m: DATA_W=%0d must be a power of two in 32..1024", DATA_W);
    end
    if (BURST_LEN * DATA_W / 8 > 4096) begin
      $fatal(1, "%m: BURST_LEN*DATA_W/8=%0d bytes exceeds the 4 KB burst boundary",
             BURST_LEN * DATA_W / 8);
    end
    if (ADDR_W < SZ + LB || ADDR_W > 32) begin
      $fatal(1, "%m: ADDR_W=%0d must be in %0d..32", ADDR_W, SZ + LB);
    end
  end

  wire [8:0] room;
  generate
    if (BURST_LEN > 1) begin : g_window
      assign room = BURST_LEN[8:0] - {{(9 - LB){1'b0}}, addr_i[SZ +: LB]};
    end else begin : g_single
      assign room = 9'd1;
    end
  endgenerate

  assign len_o = (left_i < {23'd0, room}) ? left_i[8:0] : room;

endmodule

`default_nettype wire
