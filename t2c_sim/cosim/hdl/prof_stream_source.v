// prof_stream_source: AXI4-Stream player of the stream profile (simulation only).
//
// Holds every input beat of a simulator run in one memory, loaded in bulk with $readmemh from
// the file named by the +STREAM_IN=<file> plusarg (one beat per line, DATA_BITS bits, hex). A
// frame is played when start_i is high at a rising edge: beats first_i .. first_i + count_i - 1
// in order, tlast on the last one. No Python runs per beat.
//
// Back-pressure: before offering a new beat the player asks its LFSR (prof_lfsr_pause) whether
// to pause this cycle (probability thresh_i / 65536). AXI4-Stream rules hold: a beat once
// offered stays valid with stable data until it is accepted (tvalid never depends on tready).
`timescale 1ns / 1ps
`default_nettype none

module prof_stream_source #(
  parameter integer DATA_BITS = 32,     // tdata width
  parameter integer DEPTH     = 4096    // beats the memory holds
) (
  input  wire                 clk_i,
  input  wire                 rst_ni,
  input  wire                 start_i,   // play a frame (ignored while one is playing)
  input  wire [31:0]          first_i,   // its first beat in the memory
  input  wire [31:0]          count_i,   // its beats (>= 1)
  input  wire [31:0]          seed_i,    // LFSR seed (loaded at start_i)
  input  wire [16:0]          thresh_i,  // pause probability thresh_i / 65536
  output wire [DATA_BITS-1:0] tdata_o,
  output reg                  tvalid_o,
  input  wire                 tready_i,
  output wire                 tlast_o,
  output reg                  busy_o,    // a frame is playing
  output reg                  done_o,    // its last beat has been accepted (until the next start)
  output reg  [31:0]          sent_o     // beats of the frame accepted so far
);

  reg  [DATA_BITS-1:0] mem_q [0:DEPTH-1];
  reg  [31:0]          idx_q, last_q;   // set by start_i
  reg  [1023:0]        file_q;
  wire                 pause;
  wire                 fire = tvalid_o && tready_i;

  assign tdata_o = mem_q[idx_q[$clog2(DEPTH)-1:0]];
  assign tlast_o = tvalid_o && idx_q == last_q;

  initial begin
    if ($value$plusargs("STREAM_IN=%s", file_q)) begin
      $readmemh(file_q, mem_q);
    end
  end

  prof_lfsr_pause u_pause (
    .clk_i    (clk_i),
    .load_i   (start_i && !busy_o),
    .seed_i   (seed_i),
    .thresh_i (thresh_i),
    .en_i     (busy_o && (!tvalid_o || fire)),
    .pause_o  (pause)
  );

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      tvalid_o <= 1'b0;
      busy_o   <= 1'b0;
      done_o   <= 1'b0;
      sent_o   <= 32'd0;
    end else if (!busy_o) begin
      if (start_i) begin
        idx_q    <= first_i;
        last_q   <= first_i + count_i - 32'd1;
        busy_o   <= 1'b1;
        done_o   <= 1'b0;
        sent_o   <= 32'd0;
      end
    end else begin
      if (fire) begin
        sent_o <= sent_o + 32'd1;
        if (idx_q == last_q) begin
          busy_o   <= 1'b0;
          done_o   <= 1'b1;
        end else begin
          idx_q <= idx_q + 32'd1;
        end
      end
      // a pending beat stays valid; a new one is offered unless the LFSR pauses
      if (!tvalid_o || fire) begin
        tvalid_o <= !(fire && idx_q == last_q) && !pause;
      end
    end
  end

endmodule

`default_nettype wire
