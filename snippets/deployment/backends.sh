# 在 app.py 所在的目录里运行；umask 007 让 socket 文件的属组也能读写
umask 007
python app.py --path /tmp/aiohttp-1.sock &
python app.py --path /tmp/aiohttp-2.sock &
