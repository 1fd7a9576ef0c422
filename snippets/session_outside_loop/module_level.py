"""反例：在模块顶层、也就是导入时创建 ClientSession。"""

import aiohttp

session = aiohttp.ClientSession()  # 导入模块时还没有正在运行的事件循环
