FROM registry.local:5000/runtime/debian@sha256:3333333333333333333333333333333333333333333333333333333333333333
RUN curl -fsSL https://get.example.com/install.sh | bash
COPY app /app
CMD ["/app"]
