#!/usr/bin/env python3
"""Generates the example load traces for `reactor simulate` (CSV of
second,requests), deterministically (seeded; the same files on every run):

  steady.csv   1 h   about 100 req/s with Poisson noise
  wave.csv     24 h  a daily wave: 20 req/s at night, 300 req/s at the
                     afternoon peak, with slow drift and noise
  bursts.csv   1 h   a wandering base of 40-120 req/s with bursts: about 12
                     an hour (Poisson), each rising over 5-20 s to 1.5-3x the
                     base, holding 20-90 s and decaying over 10-30 s; peaks
                     stay under 360 req/s (18 instances of 20 req/s)

  bursts-N.csv for each N of --seeds N,N,...: the bursty generator with
               seed N instead of 3, to see how much a result depends on
               the one shipped trace
  steady-M.csv for each M of --steady-means M,M,...: 1 h of Poisson noise
               around M req/s (seed 100 + M), to see whether a policy is
               calm at every steady level, not only at steady.csv's 100

Usage: simulate_traces.py [OUT_DIR] [--seeds N,N,...] [--steady-means M,M,...]   (default: ./traces)
"""
import math
import os
import random
import sys


def poisson(rng, lam):
    """A Poisson sample: Knuth's method for small means, a rounded normal above."""
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))


def steady(rng):
    return [poisson(rng, 100) for _ in range(3600)]


def wave(rng):
    out = []
    drift = 0.0
    for s in range(86400):
        hour = s / 3600.0
        # Trough at 04:00, peak at 16:00.
        shape = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4) / 24)
        drift = max(-0.15, min(0.15, drift + rng.gauss(0, 0.002)))
        out.append(poisson(rng, (20 + 280 * shape) * (1 + drift)))
    return out


def bursts(rng):
    seconds = 3600
    base, level = [], 80.0
    for _ in range(seconds):
        level += rng.gauss(0, 1.5) + (80.0 - level) * 0.002
        level = max(40.0, min(120.0, level))
        base.append(level)
    extra = [0.0] * seconds
    t = rng.expovariate(12 / 3600.0)
    while t < seconds:
        start = int(t)
        rise, hold, decay = rng.randint(5, 20), rng.randint(20, 90), rng.randint(10, 30)
        factor = rng.uniform(1.5, 3.0)
        for i in range(rise + hold + decay):
            s = start + i
            if s >= seconds:
                break
            if i < rise:
                w = (i + 1) / rise
            elif i < rise + hold:
                w = 1.0
            else:
                w = 1.0 - (i - rise - hold + 1) / decay
            extra[s] = max(extra[s], (factor - 1) * base[s] * w)
        t += rng.expovariate(12 / 3600.0)
    return [poisson(rng, min(360.0, base[s] + extra[s])) for s in range(seconds)]


def write(path, loads):
    with open(path + ".tmp", "w") as f:
        f.write("second,requests\n")
        for s, n in enumerate(loads):
            f.write(f"{s},{n}\n")
    os.replace(path + ".tmp", path)


def main():
    args = sys.argv[1:]
    seeds = []
    if "--seeds" in args:
        i = args.index("--seeds")
        if i + 1 >= len(args):
            sys.exit("simulate_traces.py: --seeds needs a list, e.g. --seeds 4,5,6")
        seeds = [int(n) for n in args[i + 1].split(",") if n]
        del args[i:i + 2]
    means = []
    if "--steady-means" in args:
        i = args.index("--steady-means")
        if i + 1 >= len(args):
            sys.exit("simulate_traces.py: --steady-means needs a list, e.g. --steady-means 60,80")
        means = [int(n) for n in args[i + 1].split(",") if n]
        del args[i:i + 2]
    out = args[0] if args else "traces"
    os.makedirs(out, exist_ok=True)
    runs = [("steady", steady, 1), ("wave", wave, 2), ("bursts", bursts, 3)]
    runs += [(f"bursts-{n}", bursts, n) for n in seeds]
    runs += [(f"steady-{m}", lambda rng, m=m: [poisson(rng, m) for _ in range(3600)], 100 + m) for m in means]
    for name, gen, seed in runs:
        loads = gen(random.Random(seed))
        write(os.path.join(out, name + ".csv"), loads)
        print(f"{name}.csv: {len(loads)} s, mean {sum(loads) / len(loads):.1f} req/s, max {max(loads)}")


if __name__ == "__main__":
    main()
