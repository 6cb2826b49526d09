"""Generated simulation harnesses of the stream and AXI profiles (Verilog text from a DUT file).

A DUT's ports have its own names, so the harness that connects it to the profile's HDL models
(stream player/recorder, AXI4-Lite master, AXI4 memory; ``t2c_sim/cosim/hdl/prof_*.v``) is
generated from the DUT file: the clock (in HDL), the reset, the DUT instance with its Verilog
parameters and named port connections, the models, and a frame sequencer. Nothing here runs per
cycle in Python. The text is content-addressed (:func:`write_harness`), so it is part of the
build key like any source.

Frame sequencer (both profiles): ``plan.hex`` lists the frames; the harness runs them one after
the other, counts clock edges, and appends one line per frame to ``frames.txt``::

    <frame> <first edge> <last edge> <counter> <error> <in transfers> <out transfers>

and pulses ``frame_done_o`` (``finished_o`` after the last frame, when the results are dumped).
A frame's cycles are ``last - first + 1``: the clock edges from the edge that accepts its first
input beat (stream) or its first register write (AXI: the AW handshake) to the edge that accepts
its last output beat (stream) or that samples its completion (AXI: the interrupt or done
signal high, or the poll read whose data matches), both included.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2c_sim.cosim import sim as simmod

__all__ = ["HDL_DIR", "write_harness", "stream_harness", "HARNESS_TOP", "depth_tier",
           "build_generated", "release_run_dir"]

HDL_DIR = Path(__file__).resolve().parents[1] / "hdl"
HARNESS_TOP = "prof_harness"


def depth_tier(n: int, floor: int = 4096) -> int:
    """A memory depth for ``n`` entries: the next power of two, at least ``floor`` (few builds)."""
    d = floor
    while d < n:
        d *= 2
    return d


def write_harness(text: str, build_root: str | Path, dut_name: str) -> Path:
    """Write the generated harness under ``<build_root>/generated`` (named by its content)."""
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    d = Path(build_root).resolve() / "generated"
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{dut_name}-{key}.v"
    if not p.is_file():
        tmp = p.with_suffix(f".{key}.tmp")
        tmp.write_text(text)
        tmp.replace(p)
    return p


def build_generated(dut: Any, sim: str, harness: Path, models: Sequence[str],
                    params: dict[str, int], build_root: str | Path, *, name: str,
                    waves: bool = False, optimize: bool = True,
                    build_args: Sequence[str] = (),
                    ) -> tuple[simmod.BuildInfo, Path]:
    """Build a generated harness with the DUT's sources and the profile's HDL ``models``
    (cached per key) and make a fresh run directory for it (named after layer ``name``).

    ``params`` are the harness's depths and the DUT's parameters; an adapter's optional
    ``build_params(sim)`` overrides some per simulator (our front door's PE array
    implementation)."""
    params = dict(params)
    hook = getattr(dut.adapter, "build_params", None)
    if callable(hook):
        params.update(hook(sim))
    args = ["--timing", "--no-public-flat-rw"] + ["-CFLAGS", "-O2" if optimize else "-O0"] \
        if sim == "verilator" else []
    info = simmod.build(sim, HARNESS_TOP, [*dut.sources, *(HDL_DIR / m for m in models), harness],
                        params, build_root, waves=waves, build_args=[*args, *build_args],
                        includes=dut.spec.includes, defines=dut.spec.defines)
    runs = info.build_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + "-",
                                    dir=runs))
    return info, run_dir


def release_run_dir(results: Sequence[Any], run_dir: Path, keep: bool) -> None:
    """Remove a run directory unless kept (its results then say ``run_dir = None``)."""
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
        for r in results:
            r.run_dir = None


def _params(dut: Any) -> tuple[str, str]:
    """(harness parameter declarations, DUT parameter connections)."""
    decl = "".join(f",\n  parameter integer {k} = {int(v)}" for k, v in dut.params.items())
    conn = ", ".join(f".{k}({k})" for k in dut.params)
    return decl, (f"#({conn}) " if conn else "")


def _clock_reset(dut: Any) -> tuple[str, str]:
    clk, rst = dut.spec.clock, dut.spec.reset
    half = clk.period_ns / 2
    gen = (f"  reg clk = 1'b0;\n"
           f"  always #{half:g} clk = ~clk;\n"
           f"  reg rst_n = 1'b0;   // harness reset, released after {rst.cycles} edges\n"
           f"  wire dut_rst = {'rst_n' if rst.active_low else '!rst_n'};\n")
    conn = f".{clk.port}(clk), .{rst.port}(dut_rst)"
    return gen, conn


_HEAD = """`timescale 1ns / 1ps
`default_nettype none
// Generated by t2c_sim.cosim.profiles.harness for DUT {name} ({file}): do not edit.
/* verilator lint_off PROCASSINIT */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHTRUNC */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off PINCONNECTEMPTY */
/* verilator lint_off PINMISSING */
"""

_TAIL = """
/* verilator lint_on PINMISSING */
/* verilator lint_on PINCONNECTEMPTY */
/* verilator lint_on WIDTHEXPAND */
/* verilator lint_on WIDTHTRUNC */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on PROCASSINIT */
`default_nettype wire
"""


def stream_harness(dut: Any, in_bits: int, out_bits: int) -> str:
    """The stream profile's harness for ``dut`` (tdata widths in and out)."""
    cfg = dut.spec.interface
    pdecl, pconn = _params(dut)
    clkgen, clkconn = _clock_reset(dut)
    si, so = cfg.inp.prefix, cfg.out.prefix
    extra = []
    if cfg.counter:
        extra.append(f".{cfg.counter}(dut_counter)")
    if cfg.error:
        extra.append(f".{cfg.error}(dut_err)")
    ports = ",\n    ".join([clkconn,
                            f".{si}_tdata(src_data), .{si}_tvalid(src_valid), "
                            f".{si}_tready(src_ready), .{si}_tlast(src_last)",
                            f".{so}_tdata(snk_data), .{so}_tvalid(snk_valid), "
                            f".{so}_tready(snk_ready), .{so}_tlast(snk_last)", *extra])
    return _HEAD.format(name=dut.name, file=dut.spec.file) + f"""
module {HARNESS_TOP} #(
  parameter integer IN_DEPTH   = 4096,
  parameter integer OUT_DEPTH  = 4096,
  parameter integer MAX_FRAMES = 4096{pdecl}
) ();

  localparam integer IN_BITS  = {in_bits};
  localparam integer OUT_BITS = {out_bits};

{clkgen}
  reg  [31:0] plan [0:3*MAX_FRAMES];   // [0] frames; per frame: first input beat, beats in, out
  reg  [31:0] seed_q = 32'd1, thin_q = 32'd0, thout_q = 32'd0;
  reg  [31:0] nframes_q = 32'd0, frame_q = 32'd0, out_end_q = 32'd0, edge_q = 32'd0;
  reg  [31:0] first_q = 32'd0, last_q = 32'd0, wait_q = 32'd0, cnt_q = 32'd0, err_q = 32'd0;
  reg  [31:0] sent_q = 32'd0, got_q = 32'd0;
  reg  [1:0]  state_q = 2'd0;
  reg         have_first_q = 1'b0, start_q = 1'b0, load_q = 1'b0;
  reg         frame_done_o /*verilator public_flat_rw*/ = 1'b0;
  reg         finished_o /*verilator public_flat_rw*/ = 1'b0;
  wire [31:0] progress_in /*verilator public_flat_rw*/;
  wire [31:0] progress_out /*verilator public_flat_rw*/;
  integer     fstat;

  wire [IN_BITS-1:0]  src_data;
  wire                src_valid, src_ready, src_last, src_busy, src_done;
  wire [31:0]         src_sent;
  wire [OUT_BITS-1:0] snk_data;
  wire                snk_valid, snk_ready, snk_last;
  wire [31:0]         snk_count;
  wire [{cfg.counter_bits - 1}:0]         dut_counter;
  wire [{cfg.error_bits - 1}:0]         dut_err;

  assign progress_in  = src_sent;
  assign progress_out = snk_count - (out_end_q - plan[3 + 3*frame_q]);

  prof_stream_source #(.DATA_BITS(IN_BITS), .DEPTH(IN_DEPTH)) u_src (
    .clk_i(clk), .rst_ni(rst_n), .start_i(start_q), .first_i(plan[1 + 3*frame_q]),
    .count_i(plan[2 + 3*frame_q]), .seed_i(seed_q + frame_q), .thresh_i(thin_q[16:0]),
    .tdata_o(src_data), .tvalid_o(src_valid), .tready_i(src_ready), .tlast_o(src_last),
    .busy_o(src_busy), .done_o(src_done), .sent_o(src_sent)
  );

  prof_stream_sink #(.DATA_BITS(OUT_BITS), .DEPTH(OUT_DEPTH)) u_snk (
    .clk_i(clk), .rst_ni(rst_n), .load_i(load_q), .seed_i(seed_q ^ 32'h5a5a5a5a),
    .thresh_i(thout_q[16:0]), .tdata_i(snk_data), .tvalid_i(snk_valid), .tready_o(snk_ready),
    .tlast_i(snk_last), .count_o(snk_count)
  );

  {dut.spec.top} {pconn}u_dut (
    {ports}
  );

  initial begin
    if (!$value$plusargs("SEED=%d", seed_q)) seed_q = 32'd1;
    if (!$value$plusargs("TH_IN=%d", thin_q)) thin_q = 32'd0;
    if (!$value$plusargs("TH_OUT=%d", thout_q)) thout_q = 32'd0;
    $readmemh("plan.hex", plan, 0, 0);
    if (plan[0] > MAX_FRAMES) begin
      $fatal(1, "%m: plan.hex has %0d frames, more than MAX_FRAMES=%0d", plan[0], MAX_FRAMES);
    end
    $readmemh("plan.hex", plan, 0, 3 * plan[0]);
    nframes_q = plan[0];
    fstat = $fopen("frames.txt", "w");
    load_q = 1'b1;
    repeat ({dut.spec.reset.cycles}) @(posedge clk);
    rst_n = 1'b1;
    @(posedge clk);
    load_q = 1'b0;
  end

  // frame sequencer: IDLE -> RUN (first input .. last output) -> WAIT (2 edges) -> IDLE
  always @(posedge clk) begin
    frame_done_o <= 1'b0;
    start_q <= 1'b0;
    if (rst_n && !load_q) begin
      edge_q <= edge_q + 32'd1;
      case (state_q)
        2'd0: if (frame_q < nframes_q && !finished_o) begin
          start_q      <= 1'b1;
          out_end_q    <= out_end_q + plan[3 + 3*frame_q];
          have_first_q <= 1'b0;
          state_q      <= 2'd1;
        end else if (frame_q == nframes_q && !finished_o) begin
          wait_q  <= wait_q + 32'd1;
          if (wait_q == 32'd8) begin  // a few edges for stray output beats, then dump
            if (snk_count != 32'd0) begin
              $writememh("stream_out.hex", u_snk.mem_q, 0, snk_count - 1);
              $writememh("stream_last.hex", u_snk.last_q, 0, snk_count - 1);
            end
            $fwrite(fstat, "end %0d\\n", snk_count);
            $fclose(fstat);
            finished_o <= 1'b1;
          end
        end
        2'd1: begin
          if (src_valid && src_ready && !have_first_q) begin
            first_q <= edge_q;
            have_first_q <= 1'b1;
          end
          if (snk_valid && snk_ready && snk_count + 32'd1 == out_end_q) begin
            last_q <= edge_q;
          end
          if (!start_q && src_done && snk_count == out_end_q) begin
            wait_q  <= 32'd0;
            state_q <= 2'd2;
          end
        end
        default: begin
          wait_q <= wait_q + 32'd1;
          if (wait_q == 32'd1) begin  // the DUT's counter two edges after the last output beat
            $fwrite(fstat, "%0d %0d %0d %0d %0d %0d %0d\\n", frame_q, first_q, last_q,
                    {'dut_counter' if cfg.counter else "32'd0"},
                    {'dut_err' if cfg.error else "32'd0"}, src_sent,
                    plan[3 + 3*frame_q]);
            $fflush(fstat);
            frame_q      <= frame_q + 32'd1;
            frame_done_o <= 1'b1;
            wait_q       <= 32'd0;
            state_q      <= 2'd0;
          end
        end
      endcase
    end
  end

endmodule
""" + _TAIL


def _axi_ports(dut: Any) -> str:
    """Named connections of the DUT's AXI4-Lite slave and AXI4 master ports."""
    cfg = dut.spec.interface
    c, m = cfg.control_prefix, cfg.memory.prefix
    lite = [f".{c}_{s}(axil_{s})" for s in (
        "awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid",
        "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready")]
    if cfg.control_prot:
        lite += [f".{c}_awprot(3'd0)", f".{c}_arprot(3'd0)"]
    sigs = ["awaddr", "awlen", "awsize", "awburst", "awvalid", "awready", "wdata", "wstrb",
            "wlast", "wvalid", "wready", "bresp", "bvalid", "bready", "araddr", "arlen",
            "arsize", "arburst", "arvalid", "arready", "rdata", "rresp", "rlast", "rvalid",
            "rready"]
    if cfg.memory.id_bits:
        sigs += ["awid", "bid", "arid", "rid"]
    full = [f".{m}_{s}(mem_{s})" for s in sigs]
    extra = [f".{cfg.signal}(dut_signal)"] if cfg.signal else []
    return ",\n    ".join([*lite, *full, *extra])


def axi_harness(dut: Any) -> str:
    """The axi profile's harness for ``dut`` (AXI4-Lite program player + AXI4 memory model)."""
    cfg = dut.spec.interface
    mem = cfg.memory
    pdecl, pconn = _params(dut)
    clkgen, clkconn = _clock_reset(dut)
    idb = max(1, mem.id_bits)
    ids = "" if mem.id_bits else "  assign mem_awid = 1'b0;\n  assign mem_arid = 1'b0;"
    ports = clkconn + ",\n    " + _axi_ports(dut)
    return _HEAD.format(name=dut.name, file=dut.spec.file) + f"""
module {HARNESS_TOP} #(
  parameter integer MEM_DEPTH  = 4096,
  parameter integer PROG_DEPTH = 4096,
  parameter integer MAX_FRAMES = 4096{pdecl}
) ();

  localparam integer LA = {cfg.control_addr_bits};
  localparam integer DB = {mem.data_bits};
  localparam integer AB = {mem.addr_bits};
  localparam integer IB = {idb};

{clkgen}
  reg  [31:0] plan [0:4*MAX_FRAMES];   // [0] frames; per frame: program, memory words, y words
  reg  [31:0] nframes_q = 32'd0, frame_q = 32'd0, edge_q = 32'd0, first_q = 32'd0;
  reg  [31:0] last_q = 32'd0, wait_q = 32'd0;
  reg  [1:0]  state_q = 2'd0;
  reg         have_first_q = 1'b0, have_last_q = 1'b0, start_q = 1'b0, ready_q = 1'b0;
  reg         frame_done_o /*verilator public_flat_rw*/ = 1'b0;
  reg         finished_o /*verilator public_flat_rw*/ = 1'b0;
  wire [31:0] progress_in /*verilator public_flat_rw*/;
  wire [31:0] progress_out /*verilator public_flat_rw*/;
  reg  [8*64-1:0] fname;
  integer     fstat, freads;

  wire [LA-1:0] axil_awaddr, axil_araddr;
  wire          axil_awvalid, axil_awready, axil_wvalid, axil_wready, axil_bvalid, axil_bready;
  wire          axil_arvalid, axil_arready, axil_rvalid, axil_rready;
  wire [31:0]   axil_wdata, axil_rdata;
  wire [3:0]    axil_wstrb;
  wire [1:0]    axil_bresp, axil_rresp;
  wire [IB-1:0] mem_awid, mem_bid, mem_arid, mem_rid;
  wire [AB-1:0] mem_awaddr, mem_araddr;
  wire [7:0]    mem_awlen, mem_arlen;
  wire [2:0]    mem_awsize, mem_arsize;
  wire [1:0]    mem_awburst, mem_arburst, mem_bresp, mem_rresp;
  wire          mem_awvalid, mem_awready, mem_wlast, mem_wvalid, mem_wready, mem_bvalid;
  wire          mem_bready, mem_arvalid, mem_arready, mem_rlast, mem_rvalid, mem_rready;
  wire [DB-1:0] mem_wdata, mem_rdata;
  wire [DB/8-1:0] mem_wstrb;
  wire          dut_signal, complete, prog_done, rd_valid, resp_err, mem_err;
  wire [31:0]   rd_data, rd_pc, ops, mem_reads, mem_writes, mem_prot;
  wire [AB-1:0] mem_err_addr;
  reg  [31:0]   prot0_q = 32'd0;     // the memory's rule-breaking bursts before this frame
  reg  [AB-1:0] bad_addr_q = {{AB{{1'b0}}}};   // the frame's first one (its start address)
  reg           have_bad_q = 1'b0;
  assign mem_err = mem_prot != prot0_q;
{"" if cfg.signal else "  assign dut_signal = 1'b0;"}
  reg  [31:0]   ops0_q = 32'd0, beats0_q = 32'd0;   // register operations, memory beats before
  assign progress_in  = ops - ops0_q;                    // this frame (its own are reported)
  assign progress_out = mem_reads + mem_writes - beats0_q;
{ids}

  prof_axil_master #(.ADDR_BITS(LA), .PROG_DEPTH(PROG_DEPTH)) u_ctl (
    .clk_i(clk), .rst_ni(rst_n), .start_i(start_q), .pc_i(plan[1 + 4*frame_q]),
    .signal_i(dut_signal), .done_o(prog_done), .complete_o(complete), .rd_valid_o(rd_valid),
    .rd_data_o(rd_data), .rd_pc_o(rd_pc), .ops_o(ops), .resp_err_o(resp_err),
    .awaddr_o(axil_awaddr), .awvalid_o(axil_awvalid), .awready_i(axil_awready),
    .wdata_o(axil_wdata), .wstrb_o(axil_wstrb), .wvalid_o(axil_wvalid), .wready_i(axil_wready),
    .bresp_i(axil_bresp), .bvalid_i(axil_bvalid), .bready_o(axil_bready),
    .araddr_o(axil_araddr), .arvalid_o(axil_arvalid), .arready_i(axil_arready),
    .rdata_i(axil_rdata), .rresp_i(axil_rresp), .rvalid_i(axil_rvalid), .rready_o(axil_rready)
  );

  t2c_axi_mem #(.ADDR_W(AB), .DATA_W(DB), .MEM_WORDS(MEM_DEPTH), .RD_LAT({mem.read_latency}),
                .WR_LAT({mem.write_latency}), .MAX_BURST(256), .QDEPTH(16), .ID_W(IB)) u_mem (
    .clk_i(clk), .rst_ni(rst_n),
    .s_axi_arid(mem_arid), .s_axi_araddr(mem_araddr), .s_axi_arlen(mem_arlen),
    .s_axi_arsize(mem_arsize), .s_axi_arburst(mem_arburst), .s_axi_arvalid(mem_arvalid),
    .s_axi_arready(mem_arready), .s_axi_rid(mem_rid), .s_axi_rdata(mem_rdata),
    .s_axi_rresp(mem_rresp), .s_axi_rlast(mem_rlast), .s_axi_rvalid(mem_rvalid),
    .s_axi_rready(mem_rready), .s_axi_awid(mem_awid), .s_axi_awaddr(mem_awaddr),
    .s_axi_awlen(mem_awlen), .s_axi_awsize(mem_awsize), .s_axi_awburst(mem_awburst),
    .s_axi_awvalid(mem_awvalid), .s_axi_awready(mem_awready), .s_axi_wdata(mem_wdata),
    .s_axi_wstrb(mem_wstrb), .s_axi_wlast(mem_wlast), .s_axi_wvalid(mem_wvalid),
    .s_axi_wready(mem_wready), .s_axi_bid(mem_bid), .s_axi_bresp(mem_bresp),
    .s_axi_bvalid(mem_bvalid), .s_axi_bready(mem_bready), .err_lo_i({{AB{{1'b0}}}}),
    .err_hi_i({{AB{{1'b0}}}}), .prot_err_o(mem_prot), .err_addr_o(mem_err_addr),
    .rd_beats_o(mem_reads), .wr_beats_o(mem_writes)
  );

  {dut.spec.top} {pconn}u_dut (
    {ports}
  );

  initial begin
    $readmemh("plan.hex", plan, 0, 0);
    if (plan[0] > MAX_FRAMES) begin
      $fatal(1, "%m: plan.hex has %0d frames, more than MAX_FRAMES=%0d", plan[0], MAX_FRAMES);
    end
    $readmemh("plan.hex", plan, 0, 4 * plan[0]);
    nframes_q = plan[0];
    fstat = $fopen("frames.txt", "w");
    freads = $fopen("reads.txt", "w");
    repeat ({dut.spec.reset.cycles}) @(posedge clk);
    rst_n = 1'b1;
    @(posedge clk);
    ready_q = 1'b1;
  end

  always @(posedge clk) begin
    if (rd_valid) begin
      $fwrite(freads, "%0d %0d %0d\\n", frame_q, rd_pc, rd_data);
    end
  end

  // frame sequencer: IDLE (load the memory image) -> RUN (the program) -> IDLE (dump y)
  always @(posedge clk) begin
    frame_done_o <= 1'b0;
    start_q <= 1'b0;
    if (ready_q) begin
      edge_q <= edge_q + 32'd1;
      case (state_q)
        2'd0: if (frame_q < nframes_q && !finished_o) begin
          $sformat(fname, "mem_%0d.hex", frame_q);
          $readmemh(fname, u_mem.mem_q, 0, plan[2 + 4*frame_q] - 1);
          start_q      <= 1'b1;
          have_first_q <= 1'b0;
          have_last_q  <= 1'b0;
          prot0_q      <= mem_prot;
          ops0_q       <= ops;
          beats0_q     <= mem_reads + mem_writes;
          have_bad_q   <= 1'b0;
          state_q      <= 2'd1;
        end else if (frame_q == nframes_q && !finished_o) begin
          $fwrite(fstat, "end 0\\n");
          $fclose(fstat);
          $fclose(freads);
          finished_o <= 1'b1;
        end
        default: begin
          if (axil_awvalid && axil_awready && !have_first_q) begin
            first_q      <= edge_q;
            have_first_q <= 1'b1;
          end
          if (mem_err && !have_bad_q) begin
            bad_addr_q <= mem_err_addr;
            have_bad_q <= 1'b1;
          end
          if (complete && !have_last_q) begin
            last_q      <= edge_q;
            have_last_q <= 1'b1;
          end
          if (!start_q && prog_done) begin
            $sformat(fname, "y_%0d.hex", frame_q);
            $writememh(fname, u_mem.mem_q, plan[3 + 4*frame_q], plan[4 + 4*frame_q]);
            $fwrite(fstat, "%0d %0d %0d 0 %0d %0d %0d\\n", frame_q, first_q, last_q,
                    {{mem_err, resp_err}}, progress_in, progress_out);
            if (mem_err) $fwrite(fstat, "memerr %0d %0d\\n", frame_q,
                                 have_bad_q ? bad_addr_q : mem_err_addr);
            $fflush(fstat);
            frame_q      <= frame_q + 32'd1;
            frame_done_o <= 1'b1;
            state_q      <= 2'd0;
          end
        end
      endcase
    end
  end

endmodule
""" + _TAIL
