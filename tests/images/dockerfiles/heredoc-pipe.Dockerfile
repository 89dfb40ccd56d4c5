# syntax=docker/dockerfile:1.4
FROM registry.local:5000/runtime/debian@sha256:3333333333333333333333333333333333333333333333333333333333333333
RUN <<EOF
set -e
curl -sSL https://install.example.com | sh
EOF
CMD ["/bin/true"]
