# syntax=docker/dockerfile:1
FROM registry.local:5000/build/gcc@sha256:4444444444444444444444444444444444444444444444444444444444444444 AS builder
WORKDIR /src
COPY . .
RUN make build

FROM registry.local:5000/runtime/debian@sha256:3333333333333333333333333333333333333333333333333333333333333333
COPY --from=builder /src/bin/app /usr/local/bin/app
USER 65534
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["-m", "release"]
