// sws_stream_tb: Python-free stream harness of sws_top (simulation only, not part of the design).
//
// Plays one input frame from a hex file into s_axis (tlast on its last beat), captures every
// output beat into a hex file, and prints the layer's cycles. Optional seeded random pauses on
// both streams (a paused source keeps a pending beat valid: valid never drops before ready).
//
// Plusargs: +IN=<file> (one beat per line, LANES*8 bits hex, lane LANES-1 first) +N_IN=<beats>
//           +OUT=<file> +N_OUT=<beats> [+PAUSE_IN=<percent>] [+PAUSE_OUT=<percent>] [+SEED=<n>]
//           [+MAX_CYCLES=<n>]
// Prints "sws_stream_tb: cycles=<monitor> cycles_o=<dut> err=<err_o> edges=<all edges>".
`timescale 1ns / 1ps
`default_nettype none

module sws_stream_tb #(
  parameter integer ROWS      = 4,
  parameter integer COLS      = 4,
  parameter integer LANES     = 4,
  parameter integer A_BITS    = 8,
  parameter integer W_BITS    = 8,
  parameter integer ACC_BITS  = 32,
  parameter integer MULT_BITS = 32,
  parameter integer Y_BITS    = 8,
  parameter integer ACC_DEPTH = 16,
  parameter integer MAX_IN    = 1 << 20,  // input beats the harness can hold
  parameter integer MAX_OUT   = 1 << 18   // output beats the harness can hold
);

  reg clk = 1'b0;
  reg rst_n = 1'b0;
  always #5 clk = ~clk;

  reg  [LANES*8-1:0]     in_mem  [0:MAX_IN-1];
  reg  [COLS*Y_BITS-1:0] out_mem [0:MAX_OUT-1];
  reg  [1023:0]          in_file, out_file;
  integer n_in, n_out, pause_in, pause_out, seed, max_cycles;
  integer idx, nidx, got, edges, first_edge, last_edge;

  reg                    s_valid;
  wire                   s_ready;
  wire [COLS*Y_BITS-1:0] m_data;
  wire                   m_valid, m_last;
  reg                    m_ready;
  wire                   busy;
  wire [2:0]             err;
  wire [31:0]            cycles;

  sws_top #(
    .ROWS      (ROWS),
    .COLS      (COLS),
    .LANES     (LANES),
    .A_BITS    (A_BITS),
    .W_BITS    (W_BITS),
    .ACC_BITS  (ACC_BITS),
    .MULT_BITS (MULT_BITS),
    .Y_BITS    (Y_BITS),
    .ACC_DEPTH (ACC_DEPTH)
  ) u_dut (
    .clk_i         (clk),
    .rst_ni        (rst_n),
    .s_axis_tdata  (in_mem[idx]),
    .s_axis_tvalid (s_valid),
    .s_axis_tready (s_ready),
    .s_axis_tlast  (idx == n_in - 1),
    .m_axis_tdata  (m_data),
    .m_axis_tvalid (m_valid),
    .m_axis_tready (m_ready),
    .m_axis_tlast  (m_last),
    .busy_o        (busy),
    .err_o         (err),
    .cycles_o      (cycles)
  );

  initial begin
    if (!$value$plusargs("IN=%s", in_file) || !$value$plusargs("N_IN=%d", n_in) ||
        !$value$plusargs("OUT=%s", out_file) || !$value$plusargs("N_OUT=%d", n_out)) begin
      $display("sws_stream_tb: need +IN= +N_IN= +OUT= +N_OUT=");
      $finish;
    end
    if (n_in > MAX_IN || n_out > MAX_OUT) begin
      $display("sws_stream_tb: N_IN=%0d / N_OUT=%0d exceed MAX_IN=%0d / MAX_OUT=%0d", n_in, n_out,
               MAX_IN, MAX_OUT);
      $finish;
    end
    if (!$value$plusargs("PAUSE_IN=%d", pause_in)) pause_in = 0;
    if (!$value$plusargs("PAUSE_OUT=%d", pause_out)) pause_out = 0;
    if (!$value$plusargs("SEED=%d", seed)) seed = 1;
    if (!$value$plusargs("MAX_CYCLES=%d", max_cycles)) max_cycles = 100000000;
    $readmemh(in_file, in_mem, 0, n_in - 1);
    idx = 0;
    got = 0;
    edges = 0;
    first_edge = -1;
    last_edge = -1;
    s_valid = 1'b0;
    m_ready = 1'b0;
    repeat (4) @(posedge clk);
    rst_n <= 1'b1;
  end

  // percent chance in 0..99
  function chance;
    input integer pct;
    begin
      chance = (($random(seed) % 100 + 100) % 100) < pct;
    end
  endfunction

  always @(posedge clk) begin
    if (rst_n) begin
      edges = edges + 1;
      nidx = idx;
      if (s_valid && s_ready) begin
        if (first_edge < 0) first_edge = edges;
        nidx = idx + 1;
      end
      idx <= nidx;  // feeds the DUT: nonblocking, like every signal the DUT samples
      if (m_valid && m_ready) begin
        out_mem[got] = m_data;
        got = got + 1;
        if (got == n_out) begin
          last_edge = edges;
        end
      end
      // source: a pending beat stays valid; a new one is offered unless paused
      if (!s_valid || s_ready) begin
        s_valid <= (nidx < n_in) && !chance(pause_in);
      end
      m_ready <= !chance(pause_out);
      if (last_edge >= 0 && edges == last_edge + 2) begin
        $writememh(out_file, out_mem, 0, n_out - 1);
        $display("sws_stream_tb: cycles=%0d cycles_o=%0d err=%0d edges=%0d",
                 last_edge - first_edge + 1, cycles, err, edges);
        $finish;
      end
      if (edges > max_cycles) begin
        $display("sws_stream_tb: timeout after %0d cycles (%0d of %0d input beats, %0d of %0d output beats)",
                 edges, idx, n_in, got, n_out);
        $finish;
      end
    end
  end

endmodule

`default_nettype wire
