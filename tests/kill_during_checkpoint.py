"""Run training.run, but SIGKILL this process halfway through writing checkpoint number N.

    python tests/kill_during_checkpoint.py N --key value ...

The checkpoint's bytes are produced in memory, the first half is written and fsynced to the
temporary file, then the process kills itself: the state a power cut mid-write leaves on disk.
"""

import io
import os
import signal
import sys

import torch

from training.run import main

KILL_AT = int(sys.argv[1])
real_save = torch.save
calls = 0


def save_then_die_midway(obj, file, *args, **kwargs):
    global calls
    calls += 1
    if calls < KILL_AT:
        return real_save(obj, file, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer)
    data = buffer.getvalue()
    file.write(data[:len(data) // 2])
    file.flush()
    os.fsync(file.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


torch.save = save_then_die_midway
sys.exit(main(sys.argv[2:]))
