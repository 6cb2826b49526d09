// prof_stream_sink: AXI4-Stream recorder of the stream profile (simulation only).
//
// Accepts output beats and stores each one (tdata and tlast) at the next address of its
// memory; at the end of the simulator run the harness dumps the memory with $writememh (done by
// the harness, which knows how many beats arrived). No Python runs per beat.
//
// Back-pressure: on every clock edge the recorder asks its LFSR (prof_lfsr_pause) whether to
// withhold tready in the next cycle (probability thresh_i / 65536); tready is a register, so it
// never depends on tvalid. With thresh_i = 0 tready is high from the first cycle of a frame.
`timescale 1ns / 1ps
`default_nettype none

module prof_stream_sink #(
  parameter integer DATA_BITS = 32,     // tdata width
  parameter integer DEPTH     = 4096    // beats the memory holds
) (
  input  wire                 clk_i,
  input  wire                 rst_ni,
  input  wire                 load_i,    // load the LFSR seed (once, before the first frame)
  input  wire [31:0]          seed_i,
  input  wire [16:0]          thresh_i,  // pause probability thresh_i / 65536
  input  wire [DATA_BITS-1:0] tdata_i,
  input  wire                 tvalid_i,
  output reg                  tready_o,
  input  wire                 tlast_i,
  output reg  [31:0]          count_o    // beats received since the start of the run
);

  /* verilator lint_off UNUSEDSIGNAL */ // read by the harness ($writememh), not in here
  reg [DATA_BITS-1:0] mem_q  [0:DEPTH-1];
  reg                 last_q [0:DEPTH-1];
  /* verilator lint_on UNUSEDSIGNAL */
  wire                pause;

  prof_lfsr_pause u_pause (
    .clk_i    (clk_i),
    .load_i   (load_i),
    .seed_i   (seed_i),
    .thresh_i (thresh_i),
    .en_i     (rst_ni && !load_i),
    .pause_o  (pause)
  );

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      tready_o <= 1'b0;
      count_o  <= 32'd0;
    end else begin
      tready_o <= !pause && !load_i;
      if (tvalid_i && tready_o) begin
        if (count_o < DEPTH) begin
          mem_q[count_o[$clog2(DEPTH)-1:0]]  <= tdata_i;
          last_q[count_o[$clog2(DEPTH)-1:0]] <= tlast_i;
        end
        count_o <= count_o + 32'd1;
      end
    end
  end

endmodule

`default_nettype wire
