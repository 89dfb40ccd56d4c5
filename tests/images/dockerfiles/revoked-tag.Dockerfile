FROM registry.local:5000/runtime/debian:12.5
COPY app /app
CMD ["/app"]
