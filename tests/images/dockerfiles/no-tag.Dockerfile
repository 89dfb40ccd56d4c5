FROM registry.local:5000/runtime/openeuler
COPY app /app
CMD ["/app"]
