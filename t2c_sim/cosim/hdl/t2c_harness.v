// t2c_harness: simulation-only wrapper around t2c_accel_top (not synthesizable).
//
// Generates the clock in HDL (10 ns period) so no Python runs per cycle, and sequences tiles
// from files in the simulator's working directory, written beforehand by t2c_sim.cosim.accel:
//
//   plan.hex            32-bit words: [0] run count, then PLAN_WORDS words per run t at
//                       1 + PLAN_WORDS*t; field f of a run at offset PL_<F> (rows, groups, cols,
//                       a_signed, z_y, lo, hi, mode: the top's 32-bit run-mode register
//                       cfg_mode_i, act words, wgt words, ch words, output words to dump, flags:
//                       bit 0 first, bit 1 last K-chunk). The format, Y_BITS and SH_BITS are
//                       owned by t2c_sim.export.iface, which passes every one of them as a
//                       parameter (the defaults here only make the file lint on its own).
//   t<t>_act.hex, t<t>_wgt.hex, t<t>_ch.hex   the scratchpad words of run t (a count of 0
//                       leaves that memory as the previous run left it); the ch file goes to
//                       the per-row parameter memory (u_rp) instead when the run mode has
//                       ROWPAR (bit 3): it then holds one word per output row and column block
//
// One "run" is one accelerator start (one tile, or one K-chunk of a split tile). Per run (go_i
// high at a rising edge while idle, tile_i = t): $readmemh the memories in zero simulation time
// (backdoor into the RAMs' mem_q arrays), program the control registers, pulse start, wait for
// done, $writememh the output and accumulator words to t<t>_y.hex / t<t>_acc.hex (when the
// output count is not 0), append "t err cycles" to tiles.txt, raise tile_done_o. With
// +define+T2C_RAW the harness runs every run by itself and calls $finish (the Python-free
// reference run of scripts/bench_cosim.py). With the plusarg +t2c_seq=FILE it runs the listed
// runs under a watchdog by itself (the default path of t2c_sim.cosim.profiles.backdoor: no
// cocotb, no Python in the simulator; see the self-sequenced block below).
`timescale 1ns / 1ps
`default_nettype none
// Simulation-only: registers start from declared values (no reset) and the plan words are
// 32 bits of which the control registers use the low bits.
/* verilator lint_off PROCASSINIT */
/* verilator lint_off UNUSEDSIGNAL */

module t2c_harness #(
  parameter integer ROWS      = 4,
  parameter integer COLS      = 4,
  parameter integer N         = 2,
  parameter integer M         = 4,
  parameter integer A_BITS    = 8,
  parameter integer W_BITS    = 8,
  parameter integer ACC_BITS  = 32,
  parameter integer MULT_BITS = 32,
  parameter integer SHIFT_MAX = 63,
  parameter integer ACT_DEPTH = 4096,
  parameter integer W_DEPTH   = 4096,
  parameter integer OUT_DEPTH = 4096,
  parameter integer CH_DEPTH  = 256,
  parameter integer Y_BITS    = 16,   // output / z_y / clamp width (t2c_sim.export.iface.Y_BITS)
  parameter integer SH_BITS   = 6,    // shift field width (iface.SH_BITS)
  parameter integer PACKED    = 0,    // PE array implementation (t2c_pe_array)
  parameter integer PROFILES  = 1,    // build features of t2c_accel_top (iface.top_parameters)
  parameter integer ROW_PARAMS = 1,
  parameter integer ZERO_POINTS = 1,
  parameter integer MAX_TILES = 16384, // plan capacity (runs; iface.MAX_RUNS)
  parameter integer PLAN_WORDS = 13,  // plan words per run (iface.PLAN_WORDS)
  // word offset of each plan field within a run (iface.plan_offsets())
  parameter integer PL_ROWS = 0, parameter integer PL_GROUPS = 1, parameter integer PL_COLS = 2,
  parameter integer PL_A_SIGNED = 3, parameter integer PL_Z_Y = 4, parameter integer PL_LO = 5,
  parameter integer PL_HI = 6, parameter integer PL_MODE = 7, parameter integer PL_N_ACT = 8,
  parameter integer PL_N_WGT = 9, parameter integer PL_N_CH = 10, parameter integer PL_N_OUT = 11,
  parameter integer PL_FLAGS = 12
) ();

  localparam integer PW     = PLAN_WORDS;
  localparam integer CH_W   = COLS * (ACC_BITS + MULT_BITS + SH_BITS);
  localparam integer IDX_BITS = (M > 1) ? $clog2(M) : 1;
  localparam integer HW_W_A = M * ROWS * A_BITS;
  localparam integer HW_W_W = COLS * (N * W_BITS + N * IDX_BITS);
  localparam integer HW_W   = (HW_W_A > HW_W_W) ? ((HW_W_A > CH_W) ? HW_W_A : CH_W)
                                                : ((HW_W_W > CH_W) ? HW_W_W : CH_W);

  // Signals the cocotb test touches are the only VPI-visible ones on Verilator (the build
  // passes --no-public-flat-rw: making every signal public costs several times the speed).
  reg         clk /*verilator public_flat_rw*/ = 1'b0;
  always #5 clk = ~clk;

  reg         rst_n /*verilator public_flat_rw*/ = 1'b0;
  reg         go_i /*verilator public_flat_rw*/ = 1'b0;  // cocotb test (or the T2C_RAW loop)
  reg  [31:0] tile_i /*verilator public_flat_rw*/ = 32'd0;
  reg         tile_done_o /*verilator public_flat_rw*/ = 1'b0;
  reg  [7:0]  tile_err_o /*verilator public_flat_rw*/ = 8'd0;
  reg  [31:0] tile_cycles_o /*verilator public_flat_rw*/ = 32'd0;

  reg  [31:0] plan [0:1 + PW*MAX_TILES - 1];
  reg         start_q = 1'b0;
  reg  [31:0] cfg_rows_q = 32'd0, cfg_groups_q = 32'd0, cfg_cols_q = 32'd0;
  reg         cfg_asg_q = 1'b0, cfg_first_q = 1'b1, cfg_last_q = 1'b1;
  reg  [31:0] cfg_zy_q = 32'd0, cfg_lo_q = 32'd0, cfg_hi_q = 32'd0, cfg_mode_q = 32'd0;
  reg  [31:0] n_act_q = 32'd0, n_wgt_q = 32'd0, n_ch_q = 32'd0, n_out_q = 32'd0;
  reg         load_q = 1'b0;
  reg  [1:0]  state_q = 2'd0;
  integer     fstat;

  wire        busy /*verilator public_flat_rw*/;
  wire        done;
  wire [7:0]  err;
  wire [31:0] cycles;
  wire [COLS*Y_BITS-1:0]   hr_y;
  wire [COLS*ACC_BITS-1:0] hr_acc;

  t2c_accel_top #(
    .ROWS(ROWS), .COLS(COLS), .N(N), .M(M), .A_BITS(A_BITS), .W_BITS(W_BITS),
    .ACC_BITS(ACC_BITS), .MULT_BITS(MULT_BITS), .SHIFT_MAX(SHIFT_MAX), .ACT_DEPTH(ACT_DEPTH),
    .W_DEPTH(W_DEPTH), .OUT_DEPTH(OUT_DEPTH), .CH_DEPTH(CH_DEPTH), .Y_BITS(Y_BITS),
    .SH_BITS(SH_BITS), .PACKED(PACKED), .PROFILES(PROFILES), .ROW_PARAMS(ROW_PARAMS),
    .ZERO_POINTS(ZERO_POINTS)
  ) u_top (
    .clk_i(clk), .rst_ni(rst_n), .start_i(start_q),
    .cfg_rows_i(cfg_rows_q), .cfg_groups_i(cfg_groups_q), .cfg_cols_i(cfg_cols_q),
    .cfg_a_signed_i(cfg_asg_q), .cfg_first_i(cfg_first_q), .cfg_last_i(cfg_last_q), .cfg_zy_i(cfg_zy_q[Y_BITS-1:0]), .cfg_lo_i(cfg_lo_q[Y_BITS-1:0]),
    .cfg_hi_i(cfg_hi_q[Y_BITS-1:0]), .cfg_mode_i(cfg_mode_q),
    .busy_o(busy), .done_o(done), .err_o(err), .cycles_o(cycles),
    .hw_en_i(1'b0), .hw_sel_i(2'd0), .hw_addr_i(32'd0),
    .hw_data_i({HW_W{1'b0}}), .hr_addr_i(32'd0), .hr_y_o(hr_y), .hr_acc_o(hr_acc)
  );

  initial begin
    $readmemh("plan.hex", plan, 0, 0);
    if (plan[0] > MAX_TILES) begin
      $fatal(1, "%m: plan.hex has %0d runs, more than MAX_TILES=%0d", plan[0], MAX_TILES);
    end
    $readmemh("plan.hex", plan, 0, PW * plan[0]);
    fstat = $fopen("tiles.txt", "w");
    repeat (2) @(posedge clk);
    rst_n = 1'b1;
  end

  // ---- bulk loads: every memory in zero simulation time, 1 ns after load_q rises (after every
  // register of that clock edge has settled; a process per memory that wakes only then: one
  // woken every clock edge costs Icarus measurably)
  reg [8*64-1:0] fa_n, fw_n, fc_n;
  always @(posedge load_q) begin
    #1;
    if (n_act_q != 32'd0) begin
      $sformat(fa_n, "t%0d_act.hex", tile_i);
      $readmemh(fa_n, u_top.u_act.mem_q, 0, n_act_q - 1);
    end
  end
  always @(posedge load_q) begin
    #1;
    if (n_wgt_q != 32'd0) begin
      $sformat(fw_n, "t%0d_wgt.hex", tile_i);
      $readmemh(fw_n, u_top.u_wgt.mem_q, 0, n_wgt_q - 1);
    end
  end
  always @(posedge load_q) begin
    #1;
    if (n_ch_q != 32'd0 && !cfg_mode_q[3]) begin
      $sformat(fc_n, "t%0d_ch.hex", tile_i);
      $readmemh(fc_n, u_top.u_ch.mem_q, 0, n_ch_q - 1);
    end
  end
  generate
    if (ROW_PARAMS != 0) begin : g_rpload
      reg [8*64-1:0] fr_n;
      always @(posedge load_q) begin
        #1;
        if (n_ch_q != 32'd0 && cfg_mode_q[3]) begin
          $sformat(fr_n, "t%0d_ch.hex", tile_i);
          $readmemh(fr_n, u_top.g_rp.u_rp.mem_q, 0, n_ch_q - 1);
        end
      end
    end
  endgenerate

  // ---- tile sequencer: IDLE -> (load) START -> WAIT -> dump, IDLE
  reg [8*64-1:0] fy, fa;
  always @(posedge clk) begin
    load_q  <= 1'b0;
    start_q <= 1'b0;
    case (state_q)
      2'd0: if (go_i && rst_n) begin
        cfg_rows_q   <= plan[1 + PW*tile_i + PL_ROWS];
        cfg_groups_q <= plan[1 + PW*tile_i + PL_GROUPS];
        cfg_cols_q   <= plan[1 + PW*tile_i + PL_COLS];
        cfg_asg_q    <= plan[1 + PW*tile_i + PL_A_SIGNED][0];
        cfg_zy_q     <= plan[1 + PW*tile_i + PL_Z_Y];
        cfg_lo_q     <= plan[1 + PW*tile_i + PL_LO];
        cfg_hi_q     <= plan[1 + PW*tile_i + PL_HI];
        cfg_mode_q   <= plan[1 + PW*tile_i + PL_MODE];
        n_act_q      <= plan[1 + PW*tile_i + PL_N_ACT];
        n_wgt_q      <= plan[1 + PW*tile_i + PL_N_WGT];
        n_ch_q       <= plan[1 + PW*tile_i + PL_N_CH];
        n_out_q      <= plan[1 + PW*tile_i + PL_N_OUT];
        cfg_first_q  <= plan[1 + PW*tile_i + PL_FLAGS][0];
        cfg_last_q   <= plan[1 + PW*tile_i + PL_FLAGS][1];
        tile_done_o  <= 1'b0;
        load_q       <= 1'b1;
        state_q      <= 2'd1;
      end
      2'd1: begin  // banks are loaded at this edge; start the accelerator
        start_q <= 1'b1;
        state_q <= 2'd2;
      end
      2'd2: state_q <= 2'd3;  // start is being sampled by the top
      default: if (done) begin
        if (err == 8'd0 && n_out_q != 32'd0) begin
          $sformat(fy, "t%0d_y.hex", tile_i);
          $writememh(fy, u_top.u_out.mem_q, 0, n_out_q - 1);
          $sformat(fa, "t%0d_acc.hex", tile_i);
          $writememh(fa, u_top.u_acc.mem_q, 0, n_out_q - 1);
        end
        $fwrite(fstat, "%0d %0d %0d\n", tile_i, err, cycles);
        $fflush(fstat);
        tile_err_o    <= err;
        tile_cycles_o <= cycles;
        tile_done_o   <= 1'b1;
        state_q       <= 2'd0;
      end
    endcase
  end

  // ---- self-sequenced mode (+t2c_seq=FILE, the default path: no Python in the simulator).
  // The run list and the watchdog that tb_backdoor.py (cocotb) otherwise drives, in HDL.
  // FILE (32-bit hex words): [0] entry count n, then per entry s the run number at 1 + 2*s and
  // its watchdog limit in cycles at 2 + 2*s. The outcome goes to seq_status.txt, one line:
  // "done n" (every entry ran), "hang s busy" (entry s ran past its limit) or "err s flags"
  // (entry s ended with error flags; "x" for flags with an unknown bit); then $finish.
  reg  [31:0]    seq [0:2*MAX_TILES];
  reg  [8*512-1:0] seq_path;
  reg            seq_stop;
  integer        seq_i, seq_wd, fseq;
  initial begin
    if ($value$plusargs("t2c_seq=%s", seq_path)) begin
      $readmemh(seq_path, seq, 0, 0);
      if (seq[0] > MAX_TILES) begin
        $fatal(1, "%m: the run list has %0d entries, more than MAX_TILES=%0d", seq[0], MAX_TILES);
      end
      if (seq[0] != 32'd0) $readmemh(seq_path, seq, 0, 2 * seq[0]);
      fseq = $fopen("seq_status.txt", "w");
      seq_stop = 1'b0;
      @(posedge rst_n);
      for (seq_i = 0; seq_i < seq[0] && !seq_stop; seq_i = seq_i + 1) begin
        @(negedge clk);
        tile_i = seq[1 + 2*seq_i];
        go_i = 1'b1;
        @(negedge clk);
        go_i = 1'b0;
        seq_wd = 0;
        while (!tile_done_o && seq_wd < seq[2 + 2*seq_i]) begin
          @(negedge clk);
          seq_wd = seq_wd + 1;
        end
        seq_stop = 1'b1;  // until the run is known to have ended cleanly
        if (!tile_done_o) $fwrite(fseq, "hang %0d %0d\n", seq_i, busy);
        else if (^tile_err_o === 1'bx) $fwrite(fseq, "err %0d x\n", seq_i);
        else if (tile_err_o != 8'd0) $fwrite(fseq, "err %0d %0d\n", seq_i, tile_err_o);
        else seq_stop = 1'b0;
      end
      if (!seq_stop) $fwrite(fseq, "done %0d\n", seq[0]);
      $fclose(fseq);
      $fclose(fstat);
      $finish;
    end
  end

`ifdef T2C_RAW
  integer t;
  initial begin
    @(posedge rst_n);
    for (t = 0; t < plan[0]; t = t + 1) begin
      @(negedge clk);
      tile_i = t;
      go_i = 1'b1;
      @(negedge clk);
      go_i = 1'b0;
      while (!tile_done_o) @(negedge clk);
    end
    $fclose(fstat);
    $finish;
  end
`endif

endmodule

/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on PROCASSINIT */
`default_nettype wire
