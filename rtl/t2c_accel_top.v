// t2c_accel_top: N:M sparse GEMM accelerator with per-channel requantization (SPEC section 2).
//
// One run (start_i .. done_o) computes, for p < rows, c < cols (one scratchpad-resident tile):
//
//   acc[p][c] = wrap_ACC_BITS( bias[c] + sum_{g < G} sum_{j < N} val[c][g][j] * act[p][g][idx[c][g][j]] )
//   y[p][c]   = clamp(z_y + round_shift(acc[p][c] * M0[c], sh[c], mode), lo, hi)
//
// Dataflow: output-stationary, broadcast (t2c_pe_array). The run walks row blocks pb (ROWS rows)
// outer and column blocks cb (COLS channels) inner; each block streams its G groups through the
// array in G cycles, then is captured into a drain buffer so the next block computes while the
// drain feeds the buffered accumulators row by row through COLS parallel t2c_requant pipelines
// into the output scratchpad. A block occupies T = max(G, ROWS) issue slots (slots >= G are
// stalls that keep the drain buffer from being overwritten). Cycles from start to done:
//
//   cycles = (NB - 1) * max(G, ROWS) + G + ROWS + RQ_LAT + 2,   NB = ceil(rows/ROWS) * ceil(cols/COLS)
//
// (t2c_sim.estimate mirrors this exactly; docs/rtl.md derives it.)
//
// Scratchpads (banked so that every PE row / column reads one word per cycle):
//   act bank r (r < ROWS), ACT_DEPTH/ROWS words of M*A_BITS: row p = q*ROWS + r, group g at
//       address q*G + g; lane i (activation g*M + i) at [i*A_BITS +: A_BITS].
//   wgt bank c (c < COLS), W_DEPTH/COLS words: channel ch = q*COLS + c, group g at address
//       q*G + g; values lane j at [j*W_BITS +: W_BITS], indices lane j at
//       [N*W_BITS + j*IDX_BITS +: IDX_BITS].
//   ch bank c, CH_DEPTH/COLS words: channel q*COLS + c at address q:
//       bias_eff [ACC_BITS-1:0], M0 [ACC_BITS +: MULT_BITS], sh [ACC_BITS+MULT_BITS +: 6].
//   out, OUT_DEPTH words of COLS*Y_BITS: row p, column block cb at address p*CB + cb
//       (CB = ceil(cols/COLS)); lane c is channel cb*COLS + c. With ACC_DBG = 1 a parallel
//       memory holds the raw accumulators (COLS*ACC_BITS per word, same addresses).
// Lanes and columns beyond rows/cols are forced to zero (never garbage, never X).
//
// Errors (err_o, sticky until the next start): shape errors refuse the run (done_o rises with
// cycles_o = 0 and nothing is written); run-time errors flag a completed run.
//   [0] zero-size layer (rows, groups or cols = 0)       [1] ceil(rows/ROWS)*G > ACT_DEPTH/ROWS
//   [2] ceil(cols/COLS)*G > W_DEPTH/COLS                  [3] ceil(cols/COLS) > CH_DEPTH/COLS
//   [4] rows*ceil(cols/COLS) > OUT_DEPTH                  [5] lo > hi
//   [6] run time: a used channel has sh > SHIFT_MAX       [7] run time: requantizer pipeline skew
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
  parameter integer ACT_DEPTH = 4096, // activation scratchpad words (all banks)
  parameter integer W_DEPTH   = 4096, // weight scratchpad words (all banks)
  parameter integer OUT_DEPTH = 4096, // output scratchpad words
  parameter integer CH_DEPTH  = 256,  // per-channel parameter words (all banks)
  parameter integer Y_BITS    = 16,   // output, z_y and clamp width (signed)
  parameter integer ACC_DBG   = 1     // 1: also store raw accumulators (debug / localization)
) (
  input  wire                          clk_i,
  input  wire                          rst_ni,          // synchronous, active low
  // control registers (sampled when start_i is accepted)
  input  wire                          start_i,         // accepted when not busy
  input  wire [31:0]                   cfg_rows_i,      // output rows of this run
  input  wire [31:0]                   cfg_groups_i,    // G = K / M groups per dot product
  input  wire [31:0]                   cfg_cols_i,      // output channels of this run
  input  wire                          cfg_a_signed_i,
  input  wire signed [Y_BITS-1:0]      cfg_zy_i,
  input  wire signed [Y_BITS-1:0]      cfg_lo_i,
  input  wire signed [Y_BITS-1:0]      cfg_hi_i,
  input  wire [1:0]                    cfg_mode_i,      // RoundMode.code
  output wire                          busy_o,
  output wire                          done_o,          // high from the end of a run to the next start
  output wire [7:0]                    err_o,
  output wire [31:0]                   cycles_o,        // cycles of the last run (start to done)
  // host write port into the scratchpads (sel 0 act, 1 wgt, 2 ch; bank = PE row / column)
  input  wire                          hw_en_i,
  input  wire [1:0]                    hw_sel_i,
  input  wire [7:0]                    hw_bank_i,
  /* verilator lint_off UNUSEDSIGNAL */ // 32-bit register-file ports; banks use the low bits
  input  wire [31:0]                   hw_addr_i,
  input  wire [HW_W-1:0]               hw_data_i,
  // host read port of the output scratchpad (data one cycle after the address)
  input  wire [31:0]                   hr_addr_i,
  /* verilator lint_on UNUSEDSIGNAL */
  output wire [COLS*Y_BITS-1:0]        hr_y_o,
  output wire [COLS*ACC_BITS-1:0]      hr_acc_o
);

  // ------------------------------------------------------------------------- derived sizes
  localparam integer IDX_BITS = (M > 1) ? $clog2(M) : 1;
  localparam integer SH_BITS  = 6;
  localparam integer RQ_LAT   = 3;  // must equal t2c_requant's LATENCY (checked at run time: err[7])
  localparam integer ACT_BANK = ACT_DEPTH / ROWS;
  localparam integer W_BANK   = W_DEPTH / COLS;
  localparam integer CH_BANK  = CH_DEPTH / COLS;
  localparam integer AA_W     = (ACT_BANK > 1) ? $clog2(ACT_BANK) : 1;
  localparam integer WA_W     = (W_BANK > 1) ? $clog2(W_BANK) : 1;
  localparam integer CA_W     = (CH_BANK > 1) ? $clog2(CH_BANK) : 1;
  localparam integer OA_W     = (OUT_DEPTH > 1) ? $clog2(OUT_DEPTH) : 1;
  localparam integer ACT_W    = M * A_BITS;
  localparam integer VAL_W    = N * W_BITS;
  localparam integer WGT_W    = VAL_W + N * IDX_BITS;
  localparam integer CH_W     = ACC_BITS + MULT_BITS + SH_BITS;
  localparam integer PRM_W    = MULT_BITS + SH_BITS;
  localparam [63:0]  ROWS_L    = {32'd0, ROWS[31:0]};
  localparam [63:0]  COLS_L    = {32'd0, COLS[31:0]};
  localparam [63:0]  ACT_BANK_L = {32'd0, ACT_BANK[31:0]};
  localparam [63:0]  W_BANK_L  = {32'd0, W_BANK[31:0]};
  localparam [63:0]  CH_BANK_L = {32'd0, CH_BANK[31:0]};
  localparam [63:0]  OUT_DEPTH_L = {32'd0, OUT_DEPTH[31:0]};
  localparam [SH_BITS:0] SHIFT_MAX_L = SHIFT_MAX[SH_BITS:0];
  localparam integer HW_W     = (ACT_W > WGT_W) ? ((ACT_W > CH_W) ? ACT_W : CH_W)
                                                : ((WGT_W > CH_W) ? WGT_W : CH_W);

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
    if (ACC_DBG != 0 && ACC_DBG != 1) begin
      $fatal(1, "%m: ACC_DBG=%0d must be 0 or 1", ACC_DBG);
    end
  end

  // ------------------------------------------------------------------------- control state
  reg         busy_q, busy_d;
  reg         done_q, done_d;
  reg  [7:0]  err_q, err_d;
  reg  [31:0] cycles_q, cycles_d;
  // latched configuration
  reg  [31:0] rows_q, rows_d, groups_q, groups_d, cols_q, cols_d, cbn_q, cbn_d, per_q, per_d;
  reg         asg_q, asg_d;
  reg  [1:0]  mode_q, mode_d;
  reg  signed [Y_BITS-1:0] zy_q, zy_d, lo_q, lo_d, hi_q, hi_d;
  // issue stage (addresses)
  reg         iss_q, iss_d;
  reg  [31:0] slot_q, slot_d, pbase_q, pbase_d, cbase_q, cbase_d, cb_q, cb_d;
  reg  [31:0] abase_q, abase_d, wbase_q, wbase_d, obase_q, obase_d;
  // stage 1 (scratchpad data at the PE array)
  reg              vld1_q, vld1_d, clr1_q, clr1_d, last1_q, last1_d, lastblk1_q, lastblk1_d;
  reg  [ROWS-1:0]  rmask1_q, rmask1_d;
  reg  [COLS-1:0]  cmask1_q, cmask1_d;
  reg  [31:0]      oaddr1_q, oaddr1_d;
  // block registers (the block in the array), drain registers (the block being drained)
  reg              cap_q, cap_d;
  reg  [COLS*PRM_W-1:0] bprm_q, bprm_d, dprm_q, dprm_d;
  reg  [ROWS-1:0]  brmask_q, brmask_d, drmask_q, drmask_d;
  reg  [COLS-1:0]  bcmask_q, bcmask_d, dcmask_q, dcmask_d;
  reg  [31:0]      boaddr_q, boaddr_d, doaddr_q, doaddr_d;
  reg              blast_q, blast_d, dlast_q, dlast_d;
  reg              dr_q, dr_d;
  reg  [31:0]      drow_q, drow_d;
  reg  [ROWS*COLS*ACC_BITS-1:0] dbuf_q;
  // requantizer-side delay line (write enable, address, last) of RQ_LAT stages
  reg  [RQ_LAT-1:0]      dlv_q, dlv_d, dlwe_q, dlwe_d, dllast_q, dllast_d;
  /* verilator lint_off UNUSEDSIGNAL */ // addresses are 32-bit counters; memories use the low bits
  reg  [RQ_LAT*32-1:0]   dladdr_q, dladdr_d;

  // ------------------------------------------------------------------------- scratchpads
  wire [ROWS*ACT_W-1:0]    act_rd;
  wire [COLS*WGT_W-1:0]    wgt_rd;
  wire [COLS*CH_W-1:0]     ch_rd;
  wire [31:0]              act_ra = abase_q + slot_q;
  wire [31:0]              wgt_ra = wbase_q + slot_q;
  /* verilator lint_on UNUSEDSIGNAL */

  genvar gr, gc;
  generate
    for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_act
      t2c_ram #(.WIDTH(ACT_W), .DEPTH(ACT_BANK)) u_ram (
        .clk_i   (clk_i),
        .we_i    (hw_en_i && hw_sel_i == 2'd0 && hw_bank_i == gr),
        .waddr_i (hw_addr_i[AA_W-1:0]),
        .wdata_i (hw_data_i[ACT_W-1:0]),
        .raddr_i (act_ra[AA_W-1:0]),
        .rdata_o (act_rd[gr*ACT_W +: ACT_W])
      );
    end
    for (gc = 0; gc < COLS; gc = gc + 1) begin : g_wgt
      t2c_ram #(.WIDTH(WGT_W), .DEPTH(W_BANK)) u_ram (
        .clk_i   (clk_i),
        .we_i    (hw_en_i && hw_sel_i == 2'd1 && hw_bank_i == gc),
        .waddr_i (hw_addr_i[WA_W-1:0]),
        .wdata_i (hw_data_i[WGT_W-1:0]),
        .raddr_i (wgt_ra[WA_W-1:0]),
        .rdata_o (wgt_rd[gc*WGT_W +: WGT_W])
      );
    end
    for (gc = 0; gc < COLS; gc = gc + 1) begin : g_ch
      t2c_ram #(.WIDTH(CH_W), .DEPTH(CH_BANK)) u_ram (
        .clk_i   (clk_i),
        .we_i    (hw_en_i && hw_sel_i == 2'd2 && hw_bank_i == gc),
        .waddr_i (hw_addr_i[CA_W-1:0]),
        .wdata_i (hw_data_i[CH_W-1:0]),
        .raddr_i (cb_q[CA_W-1:0]),
        .rdata_o (ch_rd[gc*CH_W +: CH_W])
      );
    end
  endgenerate

  // ------------------------------------------------------------------------- PE array inputs
  reg  [ROWS*ACT_W-1:0]          pe_act;
  reg  [COLS*VAL_W-1:0]          pe_val;
  reg  [COLS*N*IDX_BITS-1:0]     pe_idx;
  reg  [COLS*ACC_BITS-1:0]       pe_bias;
  reg  [COLS*PRM_W-1:0]          ch_prm;
  wire [ROWS*COLS*ACC_BITS-1:0]  pe_acc;
  // one loop variable per always block: a shared one would make Icarus re-trigger the blocks
  integer ib, ic;

  // Rows and columns outside the tile see zeros: their results are deterministic, never X.
  // (One small always block per slice writing a variable: Icarus then propagates one vector
  // per slice update. A single block writing every slice re-evaluates every PE once per slice
  // write (10-100x slower); continuous assignments to slices make a strength-resolved net that
  // vvp rebuilds bit by bit for each slice update.)
  generate
    for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_pe_row_in
      always @* begin
        pe_act[gr*ACT_W +: ACT_W] = rmask1_q[gr] ? act_rd[gr*ACT_W +: ACT_W] : {ACT_W{1'b0}};
      end
    end
    for (gc = 0; gc < COLS; gc = gc + 1) begin : g_pe_col_in
      always @* begin
        pe_val[gc*VAL_W +: VAL_W] = cmask1_q[gc] ? wgt_rd[gc*WGT_W +: VAL_W] : {VAL_W{1'b0}};
        pe_idx[gc*N*IDX_BITS +: N*IDX_BITS] =
            cmask1_q[gc] ? wgt_rd[gc*WGT_W + VAL_W +: N*IDX_BITS] : {(N*IDX_BITS){1'b0}};
        pe_bias[gc*ACC_BITS +: ACC_BITS] =
            cmask1_q[gc] ? ch_rd[gc*CH_W +: ACC_BITS] : {ACC_BITS{1'b0}};
        ch_prm[gc*PRM_W +: PRM_W] =
            cmask1_q[gc] ? ch_rd[gc*CH_W + ACC_BITS +: PRM_W] : {PRM_W{1'b0}};
      end
    end
  endgenerate

  t2c_pe_array #(
    .ROWS     (ROWS),
    .COLS     (COLS),
    .A_BITS   (A_BITS),
    .W_BITS   (W_BITS),
    .ACC_BITS (ACC_BITS),
    .N        (N),
    .M        (M),
    .IDX_BITS (IDX_BITS)
  ) u_array (
    .clk_i      (clk_i),
    .rst_ni     (rst_ni),
    .clear_i    (clr1_q),
    .valid_i    (vld1_q),
    .a_signed_i (asg_q),
    .act_i      (pe_act),
    .val_i      (pe_val),
    .idx_i      (pe_idx),
    .bias_i     (pe_bias),
    .acc_o      (pe_acc)
  );

  // ------------------------------------------------------------------------- drain: requantizers
  reg  [COLS*ACC_BITS-1:0] drow_acc;
  /* verilator lint_off UNUSEDSIGNAL */ // drow_q is a 32-bit counter below ROWS
  wire [((ROWS > 1) ? $clog2(ROWS) : 1)-1:0] drow_sel = drow_q[((ROWS > 1) ? $clog2(ROWS) : 1)-1:0];
  /* verilator lint_on UNUSEDSIGNAL */
  reg                      sh_bad;
  wire [COLS*Y_BITS-1:0]   rq_y;
  wire [COLS-1:0]          rq_v;

  always @* begin
    drow_acc = dbuf_q[drow_sel*COLS*ACC_BITS +: COLS*ACC_BITS];
    sh_bad = 1'b0;
    for (ib = 0; ib < COLS; ib = ib + 1) begin
      // constant false when SHIFT_MAX = 63 (every 6-bit shift is legal)
      /* verilator lint_off CMPCONST */
      if (dcmask_q[ib] && {1'b0, dprm_q[ib*PRM_W + MULT_BITS +: SH_BITS]} > SHIFT_MAX_L) begin
      /* verilator lint_on CMPCONST */
        sh_bad = 1'b1;
      end
    end
  end

  generate
    for (gc = 0; gc < COLS; gc = gc + 1) begin : g_rq
      t2c_requant #(
        .ACC_BITS   (ACC_BITS),
        .MULT_BITS  (MULT_BITS),
        .SHIFT_BITS (SH_BITS),
        .Y_BITS     (Y_BITS)
      ) u_rq (
        .clk_i   (clk_i),
        .rst_ni  (rst_ni),
        .valid_i (dr_q),
        .acc_i   (drow_acc[gc*ACC_BITS +: ACC_BITS]),
        .m0_i    (dprm_q[gc*PRM_W +: MULT_BITS]),
        .sh_i    (dprm_q[gc*PRM_W + MULT_BITS +: SH_BITS]),
        .zy_i    (zy_q),
        .lo_i    (lo_q),
        .hi_i    (hi_q),
        .mode_i  (mode_q),
        .valid_o (rq_v[gc]),
        .y_o     (rq_y[gc*Y_BITS +: Y_BITS])
      );
    end
  endgenerate

  // output scratchpad (written by the drain), read by the host
  wire dr_we = dr_q & drmask_q[drow_sel];

  t2c_ram #(.WIDTH(COLS*Y_BITS), .DEPTH(OUT_DEPTH)) u_out (
    .clk_i   (clk_i),
    .we_i    (dlwe_q[RQ_LAT-1]),
    .waddr_i (dladdr_q[(RQ_LAT-1)*32 +: OA_W]),
    .wdata_i (rq_y),
    .raddr_i (hr_addr_i[OA_W-1:0]),
    .rdata_o (hr_y_o)
  );

  generate
    if (ACC_DBG == 1) begin : g_accdbg
      t2c_ram #(.WIDTH(COLS*ACC_BITS), .DEPTH(OUT_DEPTH)) u_acc (
        .clk_i   (clk_i),
        .we_i    (dr_we),
        .waddr_i (doaddr_q[OA_W-1:0]),
        .wdata_i (drow_acc),
        .raddr_i (hr_addr_i[OA_W-1:0]),
        .rdata_o (hr_acc_o)
      );
    end else begin : g_noaccdbg
      assign hr_acc_o = {(COLS*ACC_BITS){1'b0}};
    end
  endgenerate

  // ------------------------------------------------------------------------- start-time checks
  reg  [63:0] pbn_w, cbn_w;
  reg  [7:0]  shape_err;

  always @* begin
    pbn_w = ({32'd0, cfg_rows_i} + ROWS_L - 64'd1) / ROWS_L;
    cbn_w = ({32'd0, cfg_cols_i} + COLS_L - 64'd1) / COLS_L;
    shape_err    = 8'd0;
    shape_err[0] = (cfg_rows_i == 32'd0) || (cfg_groups_i == 32'd0) || (cfg_cols_i == 32'd0);
    shape_err[1] = pbn_w * {32'd0, cfg_groups_i} > ACT_BANK_L;
    shape_err[2] = cbn_w * {32'd0, cfg_groups_i} > W_BANK_L;
    shape_err[3] = cbn_w > CH_BANK_L;
    shape_err[4] = {32'd0, cfg_rows_i} * cbn_w > OUT_DEPTH_L;
    shape_err[5] = cfg_lo_i > cfg_hi_i;
  end

  // ------------------------------------------------------------------------- next state
  always @* begin
    // defaults: hold
    busy_d = busy_q;  done_d = done_q;  err_d = err_q;  cycles_d = cycles_q;
    rows_d = rows_q;  groups_d = groups_q;  cols_d = cols_q;  cbn_d = cbn_q;  per_d = per_q;
    asg_d = asg_q;  mode_d = mode_q;  zy_d = zy_q;  lo_d = lo_q;  hi_d = hi_q;
    iss_d = iss_q;  slot_d = slot_q;  pbase_d = pbase_q;  cbase_d = cbase_q;  cb_d = cb_q;
    abase_d = abase_q;  wbase_d = wbase_q;  obase_d = obase_q;
    bprm_d = bprm_q;  brmask_d = brmask_q;  bcmask_d = bcmask_q;  boaddr_d = boaddr_q;
    blast_d = blast_q;
    dprm_d = dprm_q;  drmask_d = drmask_q;  dcmask_d = dcmask_q;  doaddr_d = doaddr_q;
    dlast_d = dlast_q;  dr_d = dr_q;  drow_d = drow_q;

    if (busy_q) begin
      cycles_d = cycles_q + 32'd1;
    end

    // issue stage -> stage 1
    vld1_d     = iss_q && (slot_q < groups_q);
    clr1_d     = iss_q && (slot_q == 32'd0);
    last1_d    = iss_q && (slot_q == groups_q - 32'd1);
    lastblk1_d = ({1'b0, pbase_q} + ROWS >= {1'b0, rows_q})
              && ({1'b0, cbase_q} + COLS >= {1'b0, cols_q});
    oaddr1_d   = obase_q + cb_q;
    for (ic = 0; ic < ROWS; ic = ic + 1) begin
      rmask1_d[ic] = ({1'b0, pbase_q} + ic) < {1'b0, rows_q};
    end
    for (ic = 0; ic < COLS; ic = ic + 1) begin
      cmask1_d[ic] = ({1'b0, cbase_q} + ic) < {1'b0, cols_q};
    end
    if (iss_q) begin
      if (slot_q == per_q - 32'd1) begin
        slot_d = 32'd0;
        if ({1'b0, cbase_q} + COLS >= {1'b0, cols_q}) begin
          cb_d = 32'd0;  cbase_d = 32'd0;  wbase_d = 32'd0;
          pbase_d = pbase_q + ROWS;
          abase_d = abase_q + groups_q;
          obase_d = obase_q + cbn_q * ROWS;
          if ({1'b0, pbase_q} + ROWS >= {1'b0, rows_q}) begin
            iss_d = 1'b0;
          end
        end else begin
          cb_d = cb_q + 32'd1;
          cbase_d = cbase_q + COLS;
          wbase_d = wbase_q + groups_q;
        end
      end else begin
        slot_d = slot_q + 32'd1;
      end
    end

    // stage 1: the block entering the array latches its drain-side parameters
    if (clr1_q) begin
      bprm_d   = ch_prm;
      brmask_d = rmask1_q;
      bcmask_d = cmask1_q;
      boaddr_d = oaddr1_q;
      blast_d  = lastblk1_q;
    end
    cap_d = vld1_q && last1_q;

    // drain: capture a finished block, then one row per cycle into the requantizers
    if (cap_q) begin
      dprm_d = bprm_q;  drmask_d = brmask_q;  dcmask_d = bcmask_q;  doaddr_d = boaddr_q;
      dlast_d = blast_q;  dr_d = 1'b1;  drow_d = 32'd0;
    end else if (dr_q) begin
      doaddr_d = doaddr_q + cbn_q;
      if (drow_q == ROWS - 1) begin
        dr_d = 1'b0;
      end else begin
        drow_d = drow_q + 32'd1;
      end
    end
    dlv_d    = {dlv_q[RQ_LAT-2:0], dr_q};
    dlwe_d   = {dlwe_q[RQ_LAT-2:0], dr_we};
    dllast_d = {dllast_q[RQ_LAT-2:0], dr_q && dlast_q && (drow_q == ROWS - 1)};
    dladdr_d = {dladdr_q[(RQ_LAT-1)*32-1:0], doaddr_q};
    if (dr_q && sh_bad) begin
      err_d[6] = 1'b1;
    end
    if (busy_q && (rq_v != {COLS{dlv_q[RQ_LAT-1]}})) begin
      err_d[7] = 1'b1;
    end
    if (dllast_q[RQ_LAT-1]) begin
      busy_d = 1'b0;
      done_d = 1'b1;
    end

    // start: check the shape, latch the configuration
    if (start_i && !busy_q) begin
      cycles_d = 32'd0;
      err_d    = shape_err;
      if (shape_err != 8'd0) begin
        done_d = 1'b1;
      end else begin
        busy_d = 1'b1;  done_d = 1'b0;  iss_d = 1'b1;
        rows_d = cfg_rows_i;  groups_d = cfg_groups_i;  cols_d = cfg_cols_i;
        cbn_d  = cbn_w[31:0];
        per_d  = (cfg_groups_i > ROWS) ? cfg_groups_i : ROWS;
        asg_d = cfg_a_signed_i;  mode_d = cfg_mode_i;  zy_d = cfg_zy_i;
        lo_d = cfg_lo_i;  hi_d = cfg_hi_i;
        slot_d = 32'd0;  pbase_d = 32'd0;  cbase_d = 32'd0;  cb_d = 32'd0;
        abase_d = 32'd0;  wbase_d = 32'd0;  obase_d = 32'd0;
      end
    end
  end

  // ------------------------------------------------------------------------- registers
  always @(posedge clk_i) begin
    if (!rst_ni) begin
      busy_q <= 1'b0;  done_q <= 1'b0;  err_q <= 8'd0;  cycles_q <= 32'd0;
      iss_q <= 1'b0;  vld1_q <= 1'b0;  clr1_q <= 1'b0;  last1_q <= 1'b0;  cap_q <= 1'b0;
      dr_q <= 1'b0;  drow_q <= 32'd0;
      dlv_q <= {RQ_LAT{1'b0}};  dlwe_q <= {RQ_LAT{1'b0}};  dllast_q <= {RQ_LAT{1'b0}};
    end else begin
      busy_q <= busy_d;  done_q <= done_d;  err_q <= err_d;  cycles_q <= cycles_d;
      iss_q <= iss_d;  vld1_q <= vld1_d;  clr1_q <= clr1_d;  last1_q <= last1_d;
      cap_q <= cap_d;  dr_q <= dr_d;  drow_q <= drow_d;
      dlv_q <= dlv_d;  dlwe_q <= dlwe_d;  dllast_q <= dllast_d;
    end
  end

  // datapath and configuration registers (not reset; qualified by the control state above)
  always @(posedge clk_i) begin
    rows_q <= rows_d;  groups_q <= groups_d;  cols_q <= cols_d;  cbn_q <= cbn_d;  per_q <= per_d;
    asg_q <= asg_d;  mode_q <= mode_d;  zy_q <= zy_d;  lo_q <= lo_d;  hi_q <= hi_d;
    slot_q <= slot_d;  pbase_q <= pbase_d;  cbase_q <= cbase_d;  cb_q <= cb_d;
    abase_q <= abase_d;  wbase_q <= wbase_d;  obase_q <= obase_d;
    lastblk1_q <= lastblk1_d;  rmask1_q <= rmask1_d;  cmask1_q <= cmask1_d;  oaddr1_q <= oaddr1_d;
    bprm_q <= bprm_d;  brmask_q <= brmask_d;  bcmask_q <= bcmask_d;  boaddr_q <= boaddr_d;
    blast_q <= blast_d;
    dprm_q <= dprm_d;  drmask_q <= drmask_d;  dcmask_q <= dcmask_d;  doaddr_q <= doaddr_d;
    dlast_q <= dlast_d;  dladdr_q <= dladdr_d;
    if (cap_q) begin
      dbuf_q <= pe_acc;
    end
  end

  assign busy_o   = busy_q;
  assign done_o   = done_q;
  assign err_o    = err_q;
  assign cycles_o = cycles_q;

endmodule

`default_nettype wire
