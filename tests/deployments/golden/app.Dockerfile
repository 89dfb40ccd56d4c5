FROM registry.example.com/runtime/debian12@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
LABEL org.opencontainers.image.base.name="registry.example.com/runtime/debian12" \
      org.opencontainers.image.base.digest="sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
COPY --chown=0:0 --chmod=0555 orders /opt/app/orders
USER 65532:65532
CMD ["/opt/app/orders", "-m", "release"]
