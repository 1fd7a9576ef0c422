"""键的 repr() 带着定义它的模块名：同名的两个键也能分清。"""

from aiohttp import web

REQUEST_ID = web.RequestKey("request_id", str)

if __name__ == "__main__":
    import app

    print(repr(app.REQUEST_ID))  # 从 app.py 导入的键
    print(repr(REQUEST_ID))  # 本文件里的同名键
    print(app.REQUEST_ID == REQUEST_ID)
