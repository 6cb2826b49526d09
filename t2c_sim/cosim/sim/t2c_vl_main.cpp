// t2c-sim: a Verilator main with no VPI and no Python, for harnesses that sequence themselves
// (the back-door harness with +t2c_seq=FILE). It is the time loop of cocotb's verilator.cpp
// (the main the same model is linked with for cocotb tests) without the callbacks: the model,
// its flags and its plusargs (+verilator+seed+, +verilator+rand+reset+) are the same, so a run
// is the same simulation, only without the per-time-step VPI work and the Python start-up.
#include <memory>

#include "Vtop.h"
#include "verilated.h"
#if VM_COVERAGE
#include "verilated_cov.h"
#endif

static vluint64_t main_time = 0;

double sc_time_stamp() { return main_time; }  // $time, as in cocotb's main

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    std::unique_ptr<Vtop> top(new Vtop(""));
    while (!Verilated::gotFinish()) {
        top->eval_step();
        top->eval_end_step();
        if (Verilated::gotFinish() || !top->eventsPending()) break;
        main_time = top->nextTimeSlot();
        Verilated::threadContextp()->time(main_time);
    }
    top->final();
#if VM_COVERAGE
    VerilatedCov::write();  // +verilator+coverage+file+<name>, default coverage.dat
#endif
    return Verilated::threadContextp()->errorCount() > 0 ? 1 : 0;
}
