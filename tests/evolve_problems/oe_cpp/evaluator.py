"""OpenEvolve-style evaluator for a C++ program: compile it with g++, run it, score its output."""
import os
import subprocess
import tempfile

TARGET = 7.0


def evaluate(program_path):
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "prog")
        build = subprocess.run(["g++", "-O1", "-o", exe, program_path], capture_output=True, text=True)
        if build.returncode != 0:
            return {"combined_score": 0.0, "error": "compilation failed", "compile_ok": 0.0}
        out = subprocess.run([exe], capture_output=True, text=True, timeout=10).stdout
    g = float(out.strip())
    return {"combined_score": 10.0 - abs(g - TARGET), "compile_ok": 1.0}
