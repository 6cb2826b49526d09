// sws_requant: one output lane of the requantizer (SPEC section 2), 3 stages with a shared enable.
//
//   y = clamp(z_y + round_shift(acc * M0, sh, mode), lo, hi)        output: y[Y_BITS-1:0]
//
//   acc signed ACC_BITS (<= 32), M0 unsigned MULT_BITS (<= 32), sh in 0..63, z_y/lo/hi signed 32.
//
// round_shift adds a mode-dependent bias and shifts arithmetically (h = 2^(sh-1)):
//
//   mode 0 half_even : (v + h - 1 + v[sh]) >>> sh     (v[sh] is bit 0 of floor(v / 2^sh))
//   mode 1 half_up   : (v + h) >>> sh
//   mode 2 half_away : (v + h - (v < 0)) >>> sh
//   mode 3 floor     :  v >>> sh
//   sh = 0           :  v                               (every mode)
//
// which equals SPEC's definitions on the exact rational v / 2^sh: the bias moves exactly the
// values that must round up across the next multiple of 2^sh (ties: half_even up only for an odd
// quotient, half_away up only for v >= 0). The sum is formed in R_BITS = max(P_BITS, 64) + 1 bits
// (P_BITS = ACC_BITS + MULT_BITS + 1 is the exact product width, the bias is < 2^63), so it never
// overflows; z_y + rounded and the clamp use R_BITS + 1 bits, so a huge value saturates to lo or
// hi. The output lane is the low Y_BITS bits of the clamped value: exact when [lo, hi] lies in the
// signed or the unsigned Y_BITS range (the host reads the lane signed or unsigned accordingly).
//
// Stages (each register loads only when en_i is high; a stalled pipeline holds):
//   B: prod_q = acc * M0              (sh, mode carried)
//   C: rnd_q  = round_shift(prod_q)
//   D: y_q    = clamp(z_y + rnd_q, lo, hi)[Y_BITS-1:0]
// z_y, lo, hi and mode are layer constants (stable while the layer's rows drain).
`timescale 1ns / 1ps
`default_nettype none

module sws_requant #(
  parameter integer ACC_BITS  = 32,  // accumulator width (signed), 2..32
  parameter integer MULT_BITS = 32,  // M0 width (unsigned), 1..32
  parameter integer Y_BITS    = 8    // output lane width, 2..32
) (
  input  wire                        clk_i,
  input  wire                        en_i,    // advance the pipeline
  input  wire signed [ACC_BITS-1:0]  acc_i,
  input  wire        [MULT_BITS-1:0] m0_i,
  input  wire        [5:0]           sh_i,
  input  wire        [1:0]           mode_i,  // 0 half_even, 1 half_up, 2 half_away, 3 floor
  input  wire signed [31:0]          zy_i,
  input  wire signed [31:0]          lo_i,
  input  wire signed [31:0]          hi_i,
  output wire        [Y_BITS-1:0]    y_o
);

  // Exact product width (signed acc times zero-extended M0).
  localparam integer P_BITS = ACC_BITS + MULT_BITS + 1;
  // Width of v + bias (bias < 2^63).
  localparam integer R_BITS = ((P_BITS > 64) ? P_BITS : 64) + 1;
  // Width of z_y + rounded and of the clamp.
  localparam integer S_BITS = R_BITS + 1;

  initial begin
    if (ACC_BITS < 2 || ACC_BITS > 32 || MULT_BITS < 1 || MULT_BITS > 32) begin
      $fatal(1, "%m: ACC_BITS=%0d must be in 2..32 and MULT_BITS=%0d in 1..32", ACC_BITS, MULT_BITS);
    end
    if (Y_BITS < 2 || Y_BITS > 32) begin
      $fatal(1, "%m: Y_BITS=%0d is outside 2..32", Y_BITS);
    end
  end

  // ---------------------------------------------------------------- B: product
  reg signed [P_BITS-1:0] prod_q;
  reg        [5:0]        sh_q;
  reg        [1:0]        mode_q;

  always @(posedge clk_i) begin
    if (en_i) begin
      prod_q <= $signed({{(MULT_BITS + 1){acc_i[ACC_BITS-1]}}, acc_i})
              * $signed({{(ACC_BITS + 1){1'b0}}, m0_i});
      sh_q   <= sh_i;
      mode_q <= mode_i;
    end
  end

  // ---------------------------------------------------------------- C: round_shift
  reg signed [R_BITS-1:0] v_d, half_d, bias_d, sum_d, rnd_q;
  // only bit 0 of floor(v / 2^sh) (the quotient's parity) is needed
  /* verilator lint_off UNUSEDSIGNAL */
  reg signed [R_BITS-1:0] quo_d;
  /* verilator lint_on UNUSEDSIGNAL */
  reg                     odd_d;

  always @* begin
    v_d    = $signed({{(R_BITS - P_BITS){prod_q[P_BITS-1]}}, prod_q});
    half_d = {R_BITS{1'b0}};
    bias_d = {R_BITS{1'b0}};
    quo_d  = v_d >>> sh_q;
    odd_d  = quo_d[0];
    if (sh_q != 6'd0) begin
      half_d = $signed({{(R_BITS - 1){1'b0}}, 1'b1}) <<< (sh_q - 6'd1);
      case (mode_q)
        2'd0:    bias_d = half_d - $signed({{(R_BITS - 1){1'b0}}, !odd_d});
        2'd1:    bias_d = half_d;
        2'd2:    bias_d = half_d - $signed({{(R_BITS - 1){1'b0}}, v_d[R_BITS-1]});
        default: bias_d = {R_BITS{1'b0}};
      endcase
    end
    sum_d = v_d + bias_d;
  end

  always @(posedge clk_i) begin
    if (en_i) begin
      rnd_q <= sum_d >>> sh_q;
    end
  end

  // ---------------------------------------------------------------- D: zero point and clamp
  reg signed [S_BITS-1:0] z_d, lo_d, hi_d;
  reg        [Y_BITS-1:0] y_q, y_d;

  always @* begin
    z_d  = $signed({rnd_q[R_BITS-1], rnd_q})
         + $signed({{(S_BITS - 32){zy_i[31]}}, zy_i});
    lo_d = $signed({{(S_BITS - 32){lo_i[31]}}, lo_i});
    hi_d = $signed({{(S_BITS - 32){hi_i[31]}}, hi_i});
    y_d  = z_d[Y_BITS-1:0];
    if (z_d < lo_d) begin
      y_d = lo_d[Y_BITS-1:0];
    end else if (z_d > hi_d) begin
      y_d = hi_d[Y_BITS-1:0];
    end
  end

  always @(posedge clk_i) begin
    if (en_i) begin
      y_q <= y_d;
    end
  end

  assign y_o = y_q;

endmodule

`default_nettype wire
