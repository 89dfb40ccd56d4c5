FROM registry.local:5000/runtime/alpine:3.20
COPY app /app
CMD ["/app"]
