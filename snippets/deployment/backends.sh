# 在 app.py 所在的目录里运行。umask 007 让 socket 文件的属组也能读写；
# sg 让进程以 www-data 组运行，socket 文件就属于这个组（运行它的用户要在 www-data 组里）
umask 007
sg www-data -c "python app.py --path /tmp/aiohttp-1.sock" &
sg www-data -c "python app.py --path /tmp/aiohttp-2.sock" &
