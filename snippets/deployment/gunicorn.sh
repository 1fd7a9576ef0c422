# 在 app.py 所在的目录里运行
gunicorn 'app:create_app()' --bind 127.0.0.1:8080 --worker-class aiohttp.GunicornWebWorker --workers 2
