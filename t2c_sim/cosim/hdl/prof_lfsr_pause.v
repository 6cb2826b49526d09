// prof_lfsr_pause: seeded pseudo-random pause decisions for the stream profile (simulation only).
//
// A 32-bit Galois LFSR (taps 0x80200003, x^32 + x^22 + x^2 + x + 1, maximal length) steps on
// every rising clock edge while en_i is high; pause_o is high when the low 16 bits of the state
// are below THRESH: a stall probability of THRESH / 65536 per step. The seed is loaded while
// load_i is high (a zero seed is replaced by 1: the LFSR never sticks at 0). With THRESH = 0
// pause_o is never high. Both simulators compute the same sequence from the same seed, so a
// back-pressure pattern is reproducible from (seed, thresholds) alone.
`timescale 1ns / 1ps
`default_nettype none

module prof_lfsr_pause (
  input  wire        clk_i,
  input  wire        load_i,     // load seed_i (synchronous)
  input  wire [31:0] seed_i,
  input  wire [16:0] thresh_i,   // 0 .. 65536: stall probability thresh_i / 65536
  input  wire        en_i,       // step this cycle
  output wire        pause_o
);

  reg [31:0] state_q;  // loaded by load_i before the first use

  assign pause_o = {1'b0, state_q[15:0]} < thresh_i;

  always @(posedge clk_i) begin
    if (load_i) begin
      state_q <= (seed_i == 32'd0) ? 32'd1 : seed_i;
    end else if (en_i) begin
      state_q <= state_q[0] ? ((state_q >> 1) ^ 32'h80200003) : (state_q >> 1);
    end
  end

endmodule

`default_nettype wire
