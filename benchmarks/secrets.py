"""Encrypt and decrypt 1,000 generated manifests; compare with Debian's `age` doing the age layer.

Run: `.venv/bin/python benchmarks/secrets.py [--files N]`. Prints per-file cost,
the ratio to the `age` binary wrapping/unwrapping one 32-byte data key (process
start included, which is what a shell pipeline with `age` pays), wall time and
peak RSS. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from atpay_config.secrets import age
from atpay_config.secrets.inplace import decrypt_text, encrypt_text

MANIFEST = """\
# generated for the benchmark
apiVersion: atpay/v1
kind: PaymentProcessing
metadata:
  tenant: tenant-{n:04d}
  labels: {{region: eu}}
spec:
  activation: active
  salesContact:
    requested: true
    email: billing@tenant-{n:04d}.example
  gateway:
    provider: bng
    accountActive: true
  keys:
    publicKey: pk_live_{n:04d}_{pad}
    privateKey: sk_live_{n:04d}_{pad}
  paymentTypes:
    autotask: [creditCard, eCheck]
    clientPortal: [creditCard]
"""


def _age_binary_per_file(
    count: int, recipient: str, identity_file: Path
) -> tuple[float, float] | None:
    """Seconds per wrap and per unwrap of a 32-byte key with the `age` CLI, or None if missing."""
    binary = shutil.which("age")
    if binary is None:
        return None
    data_key = os.urandom(32)
    started = time.perf_counter()
    wrapped = b""
    for _ in range(count):
        wrapped = subprocess.run(
            [binary, "-a", "-r", recipient], input=data_key, capture_output=True, check=True
        ).stdout
    wrap = (time.perf_counter() - started) / count
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run(
            [binary, "-d", "-i", str(identity_file)], input=wrapped, capture_output=True, check=True
        )
    return wrap, (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    identity = age.X25519Identity.generate()
    recipient = str(identity.recipient())
    with tempfile.TemporaryDirectory() as folder:
        key_file = Path(folder) / "keys.txt"
        key_file.write_text(identity.secret_bech32() + "\n")
        texts = [MANIFEST.format(n=n, pad="x" * 24) for n in range(args.files)]
        wall = time.perf_counter()
        started = time.perf_counter()
        encrypted = [
            encrypt_text(t, path=f"t{n}.yaml", recipients=[recipient]) for n, t in enumerate(texts)
        ]
        enc_per = (time.perf_counter() - started) / args.files
        started = time.perf_counter()
        for n, text in enumerate(encrypted):
            decrypt_text(text, path=f"t{n}.yaml", identities=[identity])
        dec_per = (time.perf_counter() - started) / args.files
        ours_wall = time.perf_counter() - wall
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"files: {args.files}")
        print(f"atpay encrypt: {enc_per * 1e3:.3f} ms/file")
        print(f"atpay decrypt: {dec_per * 1e3:.3f} ms/file (MAC verified)")
        print(f"wall (ours): {ours_wall:.2f} s, peak RSS: {peak_mib:.1f} MiB")
        sample = min(args.files, 200)
        binary = _age_binary_per_file(sample, recipient, key_file)
        if binary is None:
            print("age binary: not installed (apt-get install age); ratio column skipped")
            return
        wrap, unwrap = binary
        print(
            f"age CLI wrap 32-byte key: {wrap * 1e3:.3f} ms/file, unwrap: {unwrap * 1e3:.3f} ms/file ({sample} runs)"
        )
        print(
            f"ratio atpay encrypt / age wrap: {enc_per / wrap:.2f}x; decrypt / age unwrap: {dec_per / unwrap:.2f}x"
        )


if __name__ == "__main__":
    main()
