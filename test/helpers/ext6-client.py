#!/usr/bin/env python3
"""IPv6 HTTP client whose packets carry extension headers, for end-to-end tests.

Sets a hop-by-hop options header (8 bytes) and a destination options header
(24 bytes) on a TCP socket (sticky IPV6_HOPOPTS / IPV6_DSTOPTS: every segment
carries them), sends one GET per connection and prints each response's body.
Node cannot set these options, hence Python. Usage:
  ext6-client.py HOST PORT COUNT TIMEOUT_S
"""
import socket
import sys

PADN = 1  # RFC 8200 4.2: PadN option
EXPERIMENTAL = 0x1E  # RFC 4727: experimental option; action bits 00 = skip if unknown


def opts_header(total_len):
    """An options header of total_len bytes (a multiple of 8): one experimental
    option filling it up to a 2-byte PadN (Linux refuses padding runs over 7
    bytes, so the header is not all padding)."""
    data_len = total_len - 2 - 2 - 2
    return bytes([0, total_len // 8 - 1, EXPERIMENTAL, data_len]) + bytes(data_len) + bytes([PADN, 0])


def main():
    host, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    for _ in range(count):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, opts_header(8))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, opts_header(24))
        try:
            s.connect((host, port))
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(data.split(b"\r\n\r\n", 1)[-1].decode().strip())
        except OSError as e:
            print(f"error {e}")
        finally:
            s.close()


main()
