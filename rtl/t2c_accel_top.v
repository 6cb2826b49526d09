// t2c_accel_top: N:M sparse GEMM accelerator with per-channel or per-row requantization and
// operand zero points (SPEC sections 2, 6, 7, 8, 10).
//
// One run (start_i .. done_o) computes, for p < rows, c < cols (one scratchpad-resident tile),
// one K-chunk of G groups of a dot product:
//
//   acc[p][c] = wrap_ACC_BITS( (first ? bias[p][c] : psum[p][c])
//                              + sum_{g < G} sum_{j < N} (val[c][g][j] - z_w)
//                                                        * (act[p][g][idx[c][g][j]] - z_a) )
//   psum[p][c] = acc[p][c]                                          (every run)
//   y[p][c]    = requant_mode(acc[p][c], M0[p][c], sh[p][c], z_y, lo, hi)   (last run only)
//
// where bias/M0/sh are per channel (bias[c], ...: the ch memory) or, with the run-mode bit
// ROWPAR, per row and channel (the rp memory), requant_mode is t2c_requant's (SPEC section 2
// rounding modes, or a runtime rounding profile of SPEC section 10), and z_a / z_w are the
// operand zero points (0 for MAC layers, whose z_x is folded into bias_eff; the activation x
// activation matmul of SPEC section 7 sets both; the weight operand may then be unsigned).
//
// Run-mode register cfg_mode_i (32 bits; a narrower connection zero-extends to the MAC-layer
// default: section-2 mode, per-channel parameters, no zero points):
//   [2:0]   rounding: 0 half_even, 1 half_up, 2 half_away, 3 floor, 4 ort_fp32,
//           5 tflite_double, 6 tflite_single (RoundMode.code / RoundProfile.code; 7 reserved)
//   [3]     ROWPAR: bias_eff/M0/sh per row and channel, from the rp memory
//   [4]     weight operand unsigned (zero-extended; else signed)
//   [7:5]   reserved, 0
//   [19:8]  z_a: the activation zero point, A_BITS-bit two's complement in the low bits
//   [31:20] z_w: the weight-operand zero point, W_BITS-bit two's complement in the low bits
// A field the build lacks (PROFILES = 0 and a code 4..6, ROW_PARAMS = 0 and ROWPAR,
// ZERO_POINTS = 0 and a nonzero z_a/z_w or an unsigned weight operand), code 7, a reserved bit
// or a zero-point bit above its operand width refuses the run (err_o[5]).
//
// A dot product longer than the scratchpads is computed as a sequence of runs over the same rows
// and columns (K-splitting): the first run starts from bias_eff (cfg_first_i = 1), later runs
// continue from the partial sums in the accumulator memory (cfg_first_i = 0), only the last run
// (cfg_last_i = 1) requantizes and writes y. bias_eff thus enters once, the sum wraps mod
// 2^ACC_BITS throughout and the result equals the unsplit one exactly. A layer that fits is one
// run with first = last = 1.
//
// Dataflow: output-stationary, broadcast (t2c_pe_array). The run walks row blocks pb (ROWS rows)
// outer and column blocks cb (COLS channels) inner; each block streams its G groups through the
// array in G cycles, then is captured into the array's drain buffer so the next block computes
// while the drain reads the buffered accumulators row by row, adds the partial sums of that row
// (read one cycle ahead from the accumulator memory), writes the sums back to the accumulator
// memory and, in the last run, feeds them through COLS parallel t2c_requant pipelines into the
// output scratchpad. A block occupies T = max(G, ROWS) issue slots (slots >= G are stalls that
// keep the drain buffer from being overwritten). Cycles from start to done:
//
//   cycles = (NB - 1) * max(G, ROWS) + G + ROWS + 2 + (last ? RQ_LAT : 0),
//   NB = ceil(rows/ROWS) * ceil(cols/COLS)
//
// (t2c_sim.estimate mirrors this exactly; docs/rtl.md derives it.)
//
// Per-row parameters (ROWPAR): the drain reads the rp word of its row (address p*CB + cb, the
// output's address, one cycle ahead like the partial sums) and takes M0/sh from it instead of
// the ch word; bias_eff then enters at the drain of the first run (the PE clear loads 0),
// where the partial sums of later runs enter: no extra cycle, the same cycle formula.
//
// Scratchpads (one wide word per cycle feeds the whole array; RAMs read only when needed):
//   act, ACT_DEPTH/ROWS words of M*ROWS*A_BITS: row block q, group g at address q*G + g;
//       activation (row q*ROWS + r, k = g*M + i) at [(i*ROWS + r)*A_BITS +: A_BITS] (lane-major).
//   wgt, W_DEPTH/COLS words of COLS*WGT_W: column block q, group g at address q*G + g; channel
//       q*COLS + c at [c*WGT_W +: WGT_W]: values lane j at [j*W_BITS], indices lane j at
//       [N*W_BITS + j*IDX_BITS].
//   ch, CH_DEPTH/COLS words: column block q at address q: bias_eff of channel q*COLS + c at
//       [c*ACC_BITS], M0 at [COLS*ACC_BITS + c*MULT_BITS], sh at [COLS*(ACC_BITS+MULT_BITS) + c*SH_BITS].
//   out, OUT_DEPTH words of COLS*Y_BITS: row p, column block cb at address p*CB + cb
//       (CB = ceil(cols/COLS)); lane c is channel cb*COLS + c.
//   acc (partial sums), OUT_DEPTH words of COLS*ACC_BITS, same addresses: the accumulators of
//       the latest run (partial sums between runs of a split dot product, the final accumulators
//       after the last run; the host reads them for debugging and localization).
//   rp (ROW_PARAMS = 1), OUT_DEPTH words laid out like a ch word, same addresses as out: row p,
//       column block cb at address p*CB + cb holds bias_eff, M0, sh of (row p, channel cb*COLS + c)
//       in lane c. Written through the host port with hw_sel_i = 3.
// Rows and columns beyond rows/cols see zero operands (masked), so their lanes are deterministic
// (never garbage, never X); they are not written.
//
// Errors (err_o, sticky until the next start): shape errors refuse the run (done_o rises with
// cycles_o = 0 and nothing is written); run-time errors flag a completed run.
//   [0] zero-size layer (rows, groups or cols = 0)       [1] ceil(rows/ROWS)*G > ACT_DEPTH/ROWS
//   [2] ceil(cols/COLS)*G > W_DEPTH/COLS                  [3] ceil(cols/COLS) > CH_DEPTH/COLS
//   [4] rows*ceil(cols/COLS) > OUT_DEPTH                  [5] lo > hi, or a run mode the
//                                                             build lacks (see cfg_mode_i)
//   [6] run time: a used output has sh > SHIFT_MAX        [7] run time: requantizer pipeline skew
//
// Simulation cost: the control is one clocked process and the scratchpads are one wide RAM each,
// so an event-driven simulator wakes few processes per cycle (docs/rtl.md, "Icarus").
`timescale 1ns / 1ps
`default_nettype none

module t2c_accel_top #(
  parameter integer ROWS      = 4,    // PE rows
  parameter integer COLS      = 4,    // PE columns
  parameter integer N         = 2,    // kept weights per group of M
  parameter integer M         = 4,    // N:M group size (N = M is dense)
  parameter integer A_BITS    = 8,    // activation width
  parameter integer W_BITS    = 8,    // weight width (signed)
  parameter integer ACC_BITS  = 32,   // accumulator width (wraps)
  parameter integer MULT_BITS = 32,   // requantizer multiplier width (M0 unsigned)
  parameter integer SHIFT_MAX = 63,   // largest legal shift (larger raises err_o[6])
  parameter integer ACT_DEPTH = 4096, // activation scratchpad: row groups of M activations
  parameter integer W_DEPTH   = 4096, // weight scratchpad: channel groups (N values + indices)
  parameter integer OUT_DEPTH = 4096, // output (and accumulator) scratchpad words
  parameter integer CH_DEPTH  = 256,  // per-channel parameter entries
  parameter integer Y_BITS    = 16,   // output, z_y and clamp width (signed)
  parameter integer SH_BITS   = 6,    // shift field width in the channel word (1..6)
  parameter integer PACKED    = 0,    // PE array implementation (t2c_pe_array): 0 PEs, 1 packed
  parameter integer PROFILES  = 1,    // 1: runtime rounding profiles in the requantizers
  parameter integer ROW_PARAMS = 1,   // 1: per-(row, channel) parameter memory (ROWPAR runs)
  parameter integer ZERO_POINTS = 1   // 1: operand zero points in the array (act x act matmul)
) (
  input  wire                          clk_i,
  input  wire                          rst_ni,          // synchronous, active low
  // control registers (sampled when start_i is accepted)
  input  wire                          start_i,         // accepted when not busy
  input  wire [31:0]                   cfg_rows_i,      // output rows of this run
  input  wire [31:0]                   cfg_groups_i,    // G: groups of M in this run's K-chunk
  input  wire [31:0]                   cfg_cols_i,      // output channels of this run
  input  wire                          cfg_a_signed_i,
  input  wire                          cfg_first_i,     // 1: start from bias_eff, 0: from psum
  input  wire                          cfg_last_i,      // 1: requantize and write y
  input  wire signed [Y_BITS-1:0]      cfg_zy_i,
  input  wire signed [Y_BITS-1:0]      cfg_lo_i,
  input  wire signed [Y_BITS-1:0]      cfg_hi_i,
  input  wire [31:0]                   cfg_mode_i,      // run mode: rounding, ROWPAR, zero points
  output wire                          busy_o,
  output wire                          done_o,          // high from the end of a run to the next start
  output wire [7:0]                    err_o,
  output wire [31:0]                   cycles_o,        // cycles of the last run (start to done)
  // host write port: one whole scratchpad word per cycle (sel 0 act, 1 wgt, 2 ch, 3 rp)
  input  wire                          hw_en_i,
  input  wire [1:0]                    hw_sel_i,
  /* verilator lint_off UNUSEDSIGNAL */ // 32-bit register-file ports; memories use the low bits
  input  wire [31:0]                   hw_addr_i,
  input  wire [HW_W-1:0]               hw_data_i,
  // host read port of the output and accumulator memories (data one cycle after the address;
  // hr_acc_o only while not busy: the drain reads the accumulator memory during a run)
  input  wire [31:0]                   hr_addr_i,
  /* verilator lint_on UNUSEDSIGNAL */
  output wire [COLS*Y_BITS-1:0]        hr_y_o,
  output wire [COLS*ACC_BITS-1:0]      hr_acc_o
);

  // ------------------------------------------------------------------------- derived sizes
  localparam integer IDX_BITS = (M > 1) ? $clog2(M) : 1;
  localparam integer RQ_LAT   = 3;  // must equal t2c_requant's LATENCY (checked at run time: err[7])
  localparam integer ACT_BANK = ACT_DEPTH / ROWS;
  localparam integer W_BANK   = W_DEPTH / COLS;
  localparam integer CH_BANK  = CH_DEPTH / COLS;
  localparam integer AA_W     = (ACT_BANK > 1) ? $clog2(ACT_BANK) : 1;
  localparam integer WA_W     = (W_BANK > 1) ? $clog2(W_BANK) : 1;
  localparam integer CA_W     = (CH_BANK > 1) ? $clog2(CH_BANK) : 1;
  localparam integer OA_W     = (OUT_DEPTH > 1) ? $clog2(OUT_DEPTH) : 1;
  localparam integer RB       = (ROWS > 1) ? $clog2(ROWS) : 1;
  localparam integer ACT_W    = M * ROWS * A_BITS;
  localparam integer WGT_W    = N * W_BITS + N * IDX_BITS;
  localparam integer WGTS_W   = COLS * WGT_W;
  localparam integer BIAS_W   = COLS * ACC_BITS;
  localparam integer M0_W     = COLS * MULT_BITS;
  localparam integer SHS_W    = COLS * SH_BITS;
  localparam integer CH_W     = BIAS_W + M0_W + SHS_W;
  localparam [63:0]  ROWS_L    = {32'd0, ROWS[31:0]};
  localparam [63:0]  COLS_L    = {32'd0, COLS[31:0]};
  localparam [63:0]  ACT_BANK_L = {32'd0, ACT_BANK[31:0]};
  localparam [63:0]  W_BANK_L  = {32'd0, W_BANK[31:0]};
  localparam [63:0]  CH_BANK_L = {32'd0, CH_BANK[31:0]};
  localparam [63:0]  OUT_DEPTH_L = {32'd0, OUT_DEPTH[31:0]};
  localparam [SH_BITS:0] SHIFT_MAX_L = SHIFT_MAX[SH_BITS:0];
  localparam [RB-1:0] LAST_ROW = ROWS[RB-1:0] - 1'b1;
  localparam integer HW_W     = (ACT_W > WGTS_W) ? ((ACT_W > CH_W) ? ACT_W : CH_W)
                                                 : ((WGTS_W > CH_W) ? WGTS_W : CH_W);

  initial begin
    if (ROWS < 1 || COLS < 1 || ROWS > 64 || COLS > 64) begin
      $fatal(1, "%m: ROWS=%0d and COLS=%0d must be in 1..64", ROWS, COLS);
    end
    if (ACT_BANK < 1 || W_BANK < 1 || CH_BANK < 1) begin
      $fatal(1, "%m: ACT_DEPTH/ROWS, W_DEPTH/COLS and CH_DEPTH/COLS must be >= 1");
    end
    if (OUT_DEPTH < 1) begin
      $fatal(1, "%m: OUT_DEPTH=%0d must be >= 1", OUT_DEPTH);
    end
    if (SHIFT_MAX < 0 || SHIFT_MAX > 63) begin
      $fatal(1, "%m: SHIFT_MAX=%0d must be in 0..63", SHIFT_MAX);
    end
    if (MULT_BITS < 2 || MULT_BITS > 32) begin
      $fatal(1, "%m: MULT_BITS=%0d must be in 2..32", MULT_BITS);
    end
    if (Y_BITS < 2 || Y_BITS > 32) begin
      $fatal(1, "%m: Y_BITS=%0d must be in 2..32", Y_BITS);
    end
    if ((PROFILES != 0 && PROFILES != 1) || (ROW_PARAMS != 0 && ROW_PARAMS != 1)
        || (ZERO_POINTS != 0 && ZERO_POINTS != 1)) begin
      $fatal(1, "%m: PROFILES=%0d, ROW_PARAMS=%0d and ZERO_POINTS=%0d must be 0 or 1",
             PROFILES, ROW_PARAMS, ZERO_POINTS);
    end
    if (ZERO_POINTS == 1 && (A_BITS > 12 || W_BITS > 12)) begin
      $fatal(1, "%m: ZERO_POINTS=1 needs A_BITS, W_BITS <= 12 (the cfg_mode_i zero-point fields), got %0d, %0d",
             A_BITS, W_BITS);
    end
    if (SH_BITS < 1 || SH_BITS > 6 || SHIFT_MAX > (1 << SH_BITS) - 1) begin
      $fatal(1, "%m: SH_BITS=%0d must be in 1..6 and hold SHIFT_MAX=%0d", SH_BITS, SHIFT_MAX);
    end
  end

  // ------------------------------------------------------------------------- state
  // control (reset)
  reg         busy_q, done_q, iss_q, vld1_q, clr1_q, last1_q, cap_q, dr_q;
  reg  [7:0]  err_q;
  reg  [31:0] cycles_q;
  reg  [RQ_LAT-1:0] dlv_q, dlwe_q, dllast_q;
  // configuration latched at start
  reg  [31:0] rows_q, groups_q, cols_q, cbn_q, cbr_q, per_q;
  reg         asg_q, first_q, last_q, rowpar_q, wuns_q;
  reg  [2:0]  mode_q;
  reg  [A_BITS-1:0] za_q;
  reg  [W_BITS-1:0] zw_q;
  reg  signed [Y_BITS-1:0] zy_q, lo_q, hi_q;
  // issue stage: addresses of the block being issued
  reg  [31:0] slot_q, pbase_q, cbase_q, cb_q, abase_q, wbase_q, obase_q;
  // stage 1 (scratchpad data at the PE array): masks and output address of its block
  reg              lastblk1_q;
  reg  [ROWS-1:0]  rmask1_q;
  reg  [COLS-1:0]  cmask1_q;
  reg  [31:0]      oaddr1_q;
  reg  [ACT_W-1:0] amask1_q;
  reg  [WGTS_W-1:0] wmask1_q;
  reg  [CH_W-1:0]  chmask1_q;
  // the block in the array (b*) and the block being drained (d*)
  reg  [M0_W-1:0]  bm0_q, dm0_q;
  reg  [SHS_W-1:0] bsh_q, dsh_q;
  reg  [ROWS-1:0]  brmask_q, drmask_q;
  reg  [COLS-1:0]  bcmask_q, dcmask_q;
  reg  [31:0]      boaddr_q, doaddr_q;
  reg              blast_q, dlast_q;
  reg  [RB-1:0]    drow_q;
  /* verilator lint_off UNUSEDSIGNAL */ // addresses are 32-bit counters; memories use the low bits
  reg  [RQ_LAT*32-1:0] dladdr_q;

  // ------------------------------------------------------------------------- scratchpads
  wire [ACT_W-1:0]   act_rd;
  wire [WGTS_W-1:0]  wgt_rd;
  wire [CH_W-1:0]    ch_rd;
  wire [31:0]        act_ra = abase_q + slot_q;
  wire [31:0]        wgt_ra = wbase_q + slot_q;
  wire               ch_re  = iss_q && slot_q == 32'd0;  // once per block: the data is held
  reg  [31:0]        acc_ra;
  /* verilator lint_on UNUSEDSIGNAL */

  t2c_ram #(.WIDTH(ACT_W), .DEPTH(ACT_BANK)) u_act (
    .clk_i   (clk_i),
    .we_i    (hw_en_i && hw_sel_i == 2'd0),
    .re_i    (iss_q),
    .waddr_i (hw_addr_i[AA_W-1:0]),
    .wdata_i (hw_data_i[ACT_W-1:0]),
    .raddr_i (act_ra[AA_W-1:0]),
    .rdata_o (act_rd)
  );

  t2c_ram #(.WIDTH(WGTS_W), .DEPTH(W_BANK)) u_wgt (
    .clk_i   (clk_i),
    .we_i    (hw_en_i && hw_sel_i == 2'd1),
    .re_i    (iss_q),
    .waddr_i (hw_addr_i[WA_W-1:0]),
    .wdata_i (hw_data_i[WGTS_W-1:0]),
    .raddr_i (wgt_ra[WA_W-1:0]),
    .rdata_o (wgt_rd)
  );

  t2c_ram #(.WIDTH(CH_W), .DEPTH(CH_BANK)) u_ch (
    .clk_i   (clk_i),
    .we_i    (hw_en_i && hw_sel_i == 2'd2),
    .re_i    (ch_re),
    .waddr_i (hw_addr_i[CA_W-1:0]),
    .wdata_i (hw_data_i[CH_W-1:0]),
    .raddr_i (cb_q[CA_W-1:0]),
    .rdata_o (ch_rd)
  );

  // ------------------------------------------------------------------------- PE array
  // Operands of rows/columns outside the tile are masked to zero; bias_eff only in a first run.
  // (A process, not continuous assignments: Icarus evaluates a vector AND net bit by bit.)
  reg  [ACT_W-1:0]  pe_act;
  reg  [WGTS_W-1:0] pe_wgt;
  reg  [CH_W-1:0]   ch_m;
  wire [BIAS_W-1:0] drow_acc;

  always @* begin
    pe_act = act_rd & amask1_q;
    pe_wgt = wgt_rd & wmask1_q;
  end

  always @* begin  // a process of its own: ch_rd changes once per block, the operands every cycle
    ch_m = ch_rd & chmask1_q;
  end

  t2c_pe_array #(
    .ROWS     (ROWS),
    .COLS     (COLS),
    .A_BITS   (A_BITS),
    .W_BITS   (W_BITS),
    .ACC_BITS (ACC_BITS),
    .N        (N),
    .M        (M),
    .IDX_BITS (IDX_BITS),
    .PACKED   (PACKED),
    .ZP       (ZERO_POINTS)
  ) u_array (
    .clk_i        (clk_i),
    .rst_ni       (rst_ni),
    .clear_i      (clr1_q),
    .valid_i      (vld1_q),
    .a_signed_i   (asg_q),
    .za_i         (za_q),
    .zw_i         (zw_q),
    .w_unsigned_i (wuns_q),
    .act_i      (pe_act),
    .wgt_i      (pe_wgt),
    .bias_i     (ch_m[BIAS_W-1:0]),
    .capture_i  (cap_q),
    .drow_i     (drow_q),
    .drow_acc_o (drow_acc)
  );

  // ------------------------------------------------------------------------- drain
  // The accumulator memory is read one cycle ahead of the drain (address = the drain's next
  // address), so a drain row's partial sums arrive with the row; while idle the host reads it.
  wire [BIAS_W-1:0] acc_rd;
  reg  [BIAS_W-1:0] dsum;
  reg               sh_bad;
  integer           ib, ic;

  always @* begin
    if (!busy_q) begin
      acc_ra = hr_addr_i;
    end else if (cap_q) begin
      acc_ra = boaddr_q;
    end else if (dr_q) begin
      acc_ra = doaddr_q + cbn_q;
    end else begin
      acc_ra = doaddr_q;
    end
  end

  // Per-row parameter memory (ROW_PARAMS): read with the accumulator memory's address, so the
  // parameters of a drain row arrive with it.
  wire [CH_W-1:0]   rp_rd;
  wire [M0_W-1:0]   rq_m0 = rowpar_q ? rp_rd[BIAS_W +: M0_W] : dm0_q;
  wire [SHS_W-1:0]  rq_sh = rowpar_q ? rp_rd[BIAS_W + M0_W +: SHS_W] : dsh_q;

  generate
    if (ROW_PARAMS == 1) begin : g_rp
      t2c_ram #(.WIDTH(CH_W), .DEPTH(OUT_DEPTH)) u_rp (
        .clk_i   (clk_i),
        .we_i    (hw_en_i && hw_sel_i == 2'd3),
        .re_i    (busy_q && rowpar_q),
        .waddr_i (hw_addr_i[OA_W-1:0]),
        .wdata_i (hw_data_i[CH_W-1:0]),
        .raddr_i (acc_ra[OA_W-1:0]),
        .rdata_o (rp_rd)
      );
    end else begin : g_norp
      assign rp_rd = {CH_W{1'b0}};   // ROWPAR runs are refused (err_o[5])
    end
  endgenerate

  // drain row + partial sums (later runs) or per-row biases (first run, ROWPAR), lane by lane,
  // mod 2^ACC_BITS (rows outside the tile add nothing)
  always @* begin
    if (!drmask_q[drow_q] || (first_q && !rowpar_q)) begin
      dsum = drow_acc;
    end else if (!first_q) begin
      for (ib = 0; ib < COLS; ib = ib + 1) begin
        dsum[ib*ACC_BITS +: ACC_BITS] = drow_acc[ib*ACC_BITS +: ACC_BITS] + acc_rd[ib*ACC_BITS +: ACC_BITS];
      end
    end else begin
      for (ib = 0; ib < COLS; ib = ib + 1) begin
        dsum[ib*ACC_BITS +: ACC_BITS] = drow_acc[ib*ACC_BITS +: ACC_BITS] + rp_rd[ib*ACC_BITS +: ACC_BITS];
      end
    end
  end

  always @* begin
    sh_bad = 1'b0;
    for (ic = 0; ic < COLS; ic = ic + 1) begin
      // constant false when SHIFT_MAX = 63 (every 6-bit shift is legal)
      /* verilator lint_off CMPCONST */
      if (dcmask_q[ic] && {1'b0, rq_sh[ic*SH_BITS +: SH_BITS]} > SHIFT_MAX_L) begin
      /* verilator lint_on CMPCONST */
        sh_bad = 1'b1;
      end
    end
  end

  wire                   dr_we = dr_q & drmask_q[drow_q];
  wire                   rq_in = dr_q & last_q;
  wire [COLS*Y_BITS-1:0] rq_y;
  wire [COLS-1:0]        rq_v;

  genvar gc;
  generate
    for (gc = 0; gc < COLS; gc = gc + 1) begin : g_rq
      t2c_requant #(
        .ACC_BITS   (ACC_BITS),
        .MULT_BITS  (MULT_BITS),
        .SHIFT_BITS (SH_BITS),
        .Y_BITS     (Y_BITS),
        .PROFILES   (PROFILES)
      ) u_rq (
        .clk_i   (clk_i),
        .rst_ni  (rst_ni),
        .valid_i (rq_in),
        .acc_i   (dsum[gc*ACC_BITS +: ACC_BITS]),
        .m0_i    (rq_m0[gc*MULT_BITS +: MULT_BITS]),
        .sh_i    (rq_sh[gc*SH_BITS +: SH_BITS]),
        .zy_i    (zy_q),
        .lo_i    (lo_q),
        .hi_i    (hi_q),
        .mode_i  (mode_q),
        .valid_o (rq_v[gc]),
        .y_o     (rq_y[gc*Y_BITS +: Y_BITS])
      );
    end
  endgenerate

  // accumulator memory: written by every run's drain (partial sums / final accumulators)
  t2c_ram #(.WIDTH(BIAS_W), .DEPTH(OUT_DEPTH)) u_acc (
    .clk_i   (clk_i),
    .we_i    (dr_we),
    .re_i    (1'b1),
    .waddr_i (doaddr_q[OA_W-1:0]),
    .wdata_i (dsum),
    .raddr_i (acc_ra[OA_W-1:0]),
    .rdata_o (acc_rd)
  );

  // output scratchpad: written RQ_LAT cycles after the drain, in the last run only
  t2c_ram #(.WIDTH(COLS*Y_BITS), .DEPTH(OUT_DEPTH)) u_out (
    .clk_i   (clk_i),
    .we_i    (dlwe_q[RQ_LAT-1]),
    .re_i    (!busy_q),
    .waddr_i (dladdr_q[(RQ_LAT-1)*32 +: OA_W]),
    .wdata_i (rq_y),
    .raddr_i (hr_addr_i[OA_W-1:0]),
    .rdata_o (hr_y_o)
  );

  assign hr_acc_o = acc_rd;

  // ------------------------------------------------------------------------- start-time checks
  reg  [63:0] pbn_w, cbn_w;
  reg  [7:0]  shape_err;
  reg         mode_bad;
  // the zero-point fields: A_BITS / W_BITS-bit patterns in the low bits of 12-bit fields
  wire [11:0] za_f = cfg_mode_i[19:8];
  wire [11:0] zw_f = cfg_mode_i[31:20];
  localparam [11:0] ZA_HI = (A_BITS >= 12) ? 12'd0 : ~((12'd1 << A_BITS) - 12'd1);
  localparam [11:0] ZW_HI = (W_BITS >= 12) ? 12'd0 : ~((12'd1 << W_BITS) - 12'd1);
  wire [A_BITS-1:0] za_w;
  wire [W_BITS-1:0] zw_w;
  generate  // (operands wider than 12 bits have no zero points: ZERO_POINTS = 1 needs <= 12)
    if (A_BITS <= 12) begin : g_za
      assign za_w = za_f[A_BITS-1:0];
    end else begin : g_za_wide
      assign za_w = {{(A_BITS - 12){1'b0}}, za_f};
    end
    if (W_BITS <= 12) begin : g_zw
      assign zw_w = zw_f[W_BITS-1:0];
    end else begin : g_zw_wide
      assign zw_w = {{(W_BITS - 12){1'b0}}, zw_f};
    end
  endgenerate

  always @* begin
    pbn_w = ({32'd0, cfg_rows_i} + ROWS_L - 64'd1) / ROWS_L;
    cbn_w = ({32'd0, cfg_cols_i} + COLS_L - 64'd1) / COLS_L;
    shape_err    = 8'd0;
    shape_err[0] = (cfg_rows_i == 32'd0) || (cfg_groups_i == 32'd0) || (cfg_cols_i == 32'd0);
    shape_err[1] = pbn_w * {32'd0, cfg_groups_i} > ACT_BANK_L;
    shape_err[2] = cbn_w * {32'd0, cfg_groups_i} > W_BANK_L;
    shape_err[3] = cbn_w > CH_BANK_L;
    shape_err[4] = {32'd0, cfg_rows_i} * cbn_w > OUT_DEPTH_L;
    // run mode: reserved values, fields the build lacks, zero-point bits above the operand
    mode_bad = (cfg_mode_i[2:0] == 3'd7) || (cfg_mode_i[7:5] != 3'd0)
               || ((za_f & ZA_HI) != 12'd0) || ((zw_f & ZW_HI) != 12'd0)
               || (PROFILES == 0 && cfg_mode_i[2])
               || (ROW_PARAMS == 0 && cfg_mode_i[3])
               || (ZERO_POINTS == 0 && (cfg_mode_i[4] || za_f != 12'd0 || zw_f != 12'd0));
    shape_err[5] = (cfg_lo_i > cfg_hi_i) || mode_bad;
  end

  // ------------------------------------------------------------------------- control
  // One clocked process (the reset, last in the block, overrides the control registers).
  // rows / columns of the block being issued that lie inside the tile (<= ROWS / COLS)
  wire [31:0] rrem = rows_q - pbase_q;
  wire [31:0] crem = cols_q - cbase_q;
  wire [31:0] nrv  = (rrem > ROWS) ? ROWS : rrem;
  wire [31:0] ncv  = (crem > COLS) ? COLS : crem;

  always @(posedge clk_i) begin
    if (busy_q) begin
      cycles_q <= cycles_q + 32'd1;
    end

    // issue stage -> stage 1
    vld1_q  <= iss_q && (slot_q < groups_q);
    clr1_q  <= iss_q && (slot_q == 32'd0);
    last1_q <= iss_q && (slot_q == groups_q - 32'd1);
    if (iss_q) begin
      if (slot_q == 32'd0) begin
        // a block starts: its masks and output address travel with its data
        rmask1_q   <= ~({ROWS{1'b1}} << nrv);
        cmask1_q   <= ~({COLS{1'b1}} << ncv);
        amask1_q   <= {M{~({(ROWS*A_BITS){1'b1}} << (nrv * A_BITS))}};
        wmask1_q   <= ~({WGTS_W{1'b1}} << (ncv * WGT_W));
        // bias_eff at the clear only in a first run with per-channel parameters
        chmask1_q  <= {~({SHS_W{1'b1}} << (ncv * SH_BITS)), ~({M0_W{1'b1}} << (ncv * MULT_BITS)),
                       (first_q && !rowpar_q) ? ~({BIAS_W{1'b1}} << (ncv * ACC_BITS))
                                              : {BIAS_W{1'b0}}};
        oaddr1_q   <= obase_q + cb_q;
        lastblk1_q <= (pbase_q + ROWS >= rows_q) && (cbase_q + COLS >= cols_q);
      end
      if (slot_q == per_q - 32'd1) begin
        slot_q <= 32'd0;
        if (cbase_q + COLS >= cols_q) begin
          cb_q <= 32'd0;  cbase_q <= 32'd0;  wbase_q <= 32'd0;
          pbase_q <= pbase_q + ROWS;
          abase_q <= abase_q + groups_q;
          obase_q <= obase_q + cbr_q;
          if (pbase_q + ROWS >= rows_q) begin
            iss_q <= 1'b0;
          end
        end else begin
          cb_q <= cb_q + 32'd1;
          cbase_q <= cbase_q + COLS;
          wbase_q <= wbase_q + groups_q;
        end
      end else begin
        slot_q <= slot_q + 32'd1;
      end
    end

    // stage 1: the block entering the array latches its drain-side parameters
    if (clr1_q) begin
      bm0_q    <= ch_m[BIAS_W +: M0_W];
      bsh_q    <= ch_m[BIAS_W + M0_W +: SHS_W];
      brmask_q <= rmask1_q;
      bcmask_q <= cmask1_q;
      boaddr_q <= oaddr1_q;
      blast_q  <= lastblk1_q;
    end
    cap_q <= vld1_q && last1_q;

    // drain: take a captured block, then one row per cycle (partial sums, requantizers). Only
    // while something is draining or in the requantizers (or a requantizer signals): otherwise
    // every register below holds its (idle) value, and an event-driven simulator skips it all.
    if (cap_q || dr_q || dlv_q != {RQ_LAT{1'b0}} || dlwe_q != {RQ_LAT{1'b0}}
        || dllast_q != {RQ_LAT{1'b0}} || rq_v != {COLS{1'b0}}) begin
      if (cap_q) begin
        dm0_q <= bm0_q;  dsh_q <= bsh_q;  drmask_q <= brmask_q;  dcmask_q <= bcmask_q;
        doaddr_q <= boaddr_q;  dlast_q <= blast_q;  dr_q <= 1'b1;  drow_q <= {RB{1'b0}};
      end else if (dr_q) begin
        doaddr_q <= doaddr_q + cbn_q;
        if (drow_q == LAST_ROW) begin
          dr_q <= 1'b0;
        end else begin
          drow_q <= drow_q + 1'b1;
        end
      end
      dlv_q    <= {dlv_q[RQ_LAT-2:0], rq_in};
      dlwe_q   <= {dlwe_q[RQ_LAT-2:0], dr_we & last_q};
      dllast_q <= {dllast_q[RQ_LAT-2:0], rq_in && dlast_q && (drow_q == LAST_ROW)};
      dladdr_q <= {dladdr_q[(RQ_LAT-1)*32-1:0], doaddr_q};
      if (rq_in && drmask_q[drow_q] && sh_bad) begin   // rows in the tile (ROWPAR: their own sh)
        err_q[6] <= 1'b1;
      end
      if (busy_q && (rq_v != {COLS{dlv_q[RQ_LAT-1]}})) begin
        err_q[7] <= 1'b1;
      end
      // done: the last output written (last run) or the last partial sums written (other runs)
      if (dllast_q[RQ_LAT-1] || (dr_q && !last_q && dlast_q && drow_q == LAST_ROW)) begin
        busy_q <= 1'b0;
        done_q <= 1'b1;
      end
    end

    // start: check the shape, latch the configuration
    if (start_i && !busy_q) begin
      cycles_q <= 32'd0;
      err_q    <= shape_err;
      if (shape_err != 8'd0) begin
        done_q <= 1'b1;
      end else begin
        busy_q <= 1'b1;  done_q <= 1'b0;  iss_q <= 1'b1;
        rows_q <= cfg_rows_i;  groups_q <= cfg_groups_i;  cols_q <= cfg_cols_i;
        cbn_q  <= cbn_w[31:0];
        cbr_q  <= cbn_w[31:0] * ROWS;
        per_q  <= (cfg_groups_i > ROWS) ? cfg_groups_i : ROWS;
        asg_q <= cfg_a_signed_i;  first_q <= cfg_first_i;  last_q <= cfg_last_i;
        mode_q <= cfg_mode_i[2:0];  rowpar_q <= cfg_mode_i[3];  wuns_q <= cfg_mode_i[4];
        za_q <= za_w;  zw_q <= zw_w;
        zy_q <= cfg_zy_i;  lo_q <= cfg_lo_i;  hi_q <= cfg_hi_i;
        slot_q <= 32'd0;  pbase_q <= 32'd0;  cbase_q <= 32'd0;  cb_q <= 32'd0;
        abase_q <= 32'd0;  wbase_q <= 32'd0;  obase_q <= 32'd0;
      end
    end

    if (!rst_ni) begin
      busy_q <= 1'b0;  done_q <= 1'b0;  err_q <= 8'd0;  cycles_q <= 32'd0;
      iss_q <= 1'b0;  vld1_q <= 1'b0;  clr1_q <= 1'b0;  last1_q <= 1'b0;  cap_q <= 1'b0;
      dr_q <= 1'b0;  drow_q <= {RB{1'b0}};  first_q <= 1'b1;  last_q <= 1'b1;  rowpar_q <= 1'b0;
      dlv_q <= {RQ_LAT{1'b0}};  dlwe_q <= {RQ_LAT{1'b0}};  dllast_q <= {RQ_LAT{1'b0}};
    end
  end

  assign busy_o   = busy_q;
  assign done_o   = done_q;
  assign err_o    = err_q;
  assign cycles_o = cycles_q;

endmodule

`default_nettype wire
