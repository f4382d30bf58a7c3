"""Per polyphonic character, the toneless readings that words of pypinyin's phrase dictionary
give it (``pinyin._readings_in_words``), written down from pypinyin 0.55.0.

Finding them walks the whole phrase dictionary (47,000 words): about a quarter of a second of
CPU in every process that reads names, each of an import's check processes included. Only the
characters pypinyin lists several readings for are kept: the others' one reading is always
theirs. ``tests/test_pinyin_words.py`` compares the table with the phrase dictionary.
"""

READINGS_IN_WORDS = """
一:yi 丁:ding 七:qi 万:mo,wan 上:shang 不:bu,fou 与:yu 且:qie 丙:bing 丞:cheng
丧:sang 个:ge 中:zhong 丱:kuang 串:chuan 为:wei 主:zhu 丽:li 乃:nai 么:me,yao
之:zhi 乌:wu 乍:zha 乐:lao,le,yue 乘:cheng,sheng 乙:yi 乜:mie,nie 九:jiu 乞:qi
也:ye 乾:qian 了:le,liao 予:yu 事:shi 于:yu 亏:kui 井:jing 亘:gen 些:xie 亟:ji
亡:wang 亢:kang 亥:hai 亨:heng 亮:liang 亲:qin,qing 亹:wei 什:shen,shi 仅:jin
仆:pu 仇:chou,qiu 介:jie 从:cong,zong 仔:zai,zi 他:ta 仙:xian 仡:ge 令:ling 以:yi
们:men 仰:yang 仳:pi 件:jian 价:jia 任:ren 份:fen 仿:fang,pang 伉:kang 伎:ji 伏:fu
休:xiu 众:zhong 优:you 伙:huo 会:hui,kuai 传:chuan,zhuan 伧:cang,chen 伯:bai,bo
估:gu 伴:ban 伺:ci,si 似:shi,si 伽:ga,jia,qie 佃:dian 但:dan 位:wei 体:ti 何:he
佗:tuo 余:yu 佚:yi 佛:fo,fu 作:zuo 佝:gou 佣:yong 佬:lao 佰:bai 佹:gui 佻:tiao
佼:jiao 侉:kua 例:li 侏:zhu 侔:mou 侗:dong,tong 供:gong 依:yi 侥:jiao,yao
侧:ce,zhai 侯:hou 侵:qin 便:bian,pian 促:cu 俊:jun 俏:qiao 俚:li 俛:fu 俞:yu
俟:qi,si 信:shen,xin 俩:lia,liang 俱:ju 俺:an 倍:bei 倒:dao 倔:jue 倘:chang,tang
倚:yi 倜:ti 倡:chang 倥:kong 倩:qian 倪:ni 倭:wo 假:jia 偈:ji 偌:ruo 偕:xie 偢:chou
偪:bi 偬:zong 偻:lou,lv 傀:kui 傅:fu 傍:bang,pang 傲:ao 僄:piao 僇:lu 僚:liao
僝:chan 僧:seng 僪:yu 僬:jiao 僮:tong 僽:zhou 儋:dan 儗:ni 儡:lei 儿:er 兀:wu 允:yun
兄:xiong 光:guang 免:mian,wen 兑:dui 兔:tu 八:ba 六:liu,lu 共:gong 兴:xing
其:ji,qi 典:dian 兹:ci,zi 内:na,nei 册:ce 冒:mao,mo 冓:gou 写:xie 冠:guan 冥:ming
冯:feng,ping 冰:bing 冲:chong 冷:leng 净:jing 凉:liang 凌:ling 几:ji 凹:ao,wa
凿:zao 刀:dao 分:fen 切:qie 划:hua 列:lie 创:chuang 刨:bao,pao 别:bie 刬:chan 刳:ku
刷:shua 券:quan,xuan 刹:cha,sha 刺:ci 刻:ke 削:xiao,xue 剌:la 前:qian 剔:ti 剖:pou
剗:chan 剥:bao,bo 副:fu 剸:tuan 剿:chao,jiao 劈:pi 助:zhu 劲:jin,jing 劾:he
勒:le,lei 募:mu 勤:qin 勷:rang 勺:shao 勾:gou 勿:wu 匀:yun 包:bao 匕:bi 化:hua
北:bei 匙:chi,shi 匡:kuang 匪:fei 匮:gui,kui 区:qu 医:yi 匽:yan 匿:ni 半:ban 华:hua
卑:bei 卒:cu,zu 卓:zhuo 单:chan,dan,shan 南:na,nan 卜:bo,bu 占:zhan 卡:ka,qia
卤:lu 卬:ang 印:yin 卵:luan 卷:juan 卻:que 厂:chang 厄:e 压:ya 厕:ce 厘:li 厝:cuo
厦:sha,xia 去:qu 参:can,cen,shen 叉:cha 反:fan 发:fa 取:qu 受:shou 叟:sou 古:gu
句:gou,ju 叨:dao,tao 只:zhi 召:zhao 叭:ba 可:ke 台:tai 叱:chi 叶:xie,ye 号:hao
司:si 叹:tan 叻:le 叽:ji 吁:xu,yu 吃:chi 各:ge 合:ge,he 同:tong 名:ming 吐:tu 吒:zha
吓:he,xia 吖:a 吗:ma 吞:tun 吟:yin 吡:bi 否:fou,pi 吧:ba 吪:e 含:han 听:ting
吭:hang,keng 吱:zhi,zi 吲:yin 吴:wu 吵:chao 吷:xue 吹:chui 吽:hong 吾:wu 呀:ya 呃:e
呆:dai 呈:cheng 告:gao,gu 呐:na 呒:wu 呕:ou 呗:bai 员:yuan 呛:qiang 呢:ne,ni
呤:ling 呱:gu,gua 呲:ci,zi 味:wei 呴:xu 呵:he,ke 呷:xia 呼:hu 咀:ju 咋:za,ze,zha
和:he,hu,huo 咎:jiu 咔:ka 咕:gu 咖:ga,ka 咣:guang 咧:lie 咪:mi 咬:yao 咯:ge,ka
咱:za,zan 咳:hai,ke 咶:shi 咷:tao 咸:xian 咽:yan,ye 哄:hong 哆:duo 哇:wa 哈:ha
哏:gen 哑:ya 哕:yue 哗:hua 哟:yo 哦:e 哧:chi 哨:shao 哩:li 哪:na,ne,nei 哺:bu
哼:heng 哽:geng 唆:suo 唇:chun 唉:ai 唏:xi 唔:wu 唛:ma 唠:lao 唧:ji 唬:hu 售:shou
唯:wei 唵:an 唷:yo 啁:zhou 啄:zhuo 啉:lin 啜:chuo 啡:fei 啥:sha 啦:la 啰:luo 啻:chi
喀:ka 喃:nan 喇:la 喊:han 喋:die 喏:nuo 喑:yin 喔:o,wo 喙:hui 喜:xi 喝:he 喟:kui
喧:xuan 喳:cha,zha 喷:pen 喻:yu 喽:lou 嗑:ke 嗒:da,ta 嗔:chen 嗟:jie 嗡:weng 嗦:suo
嗨:hai 嗲:dia 嗳:ai 嗽:shu,sou 嘀:di 嘁:qi 嘌:piao 嘎:ga 嘘:xu 嘛:ma 嘲:chao,zhao
嘹:liao 嘿:hei 噎:ye 噱:jue,xue 噶:ga 噷:hen 嚓:cha 嚣:xiao 嚷:rang 嚼:jiao,jue
囊:nang 团:tuan 囤:dun,tun 园:yuan 圈:juan,quan 圜:huan,yuan 土:tu 圣:sheng
圩:wei,xu 地:de,di 场:chang 圾:ji 均:jun 坊:fang 坎:kan 坏:huai,pi 坑:keng 块:kuai
坨:tuo 坯:pi 坷:ke 坻:di 垂:chui 垃:la 垛:duo 垠:yin 垦:ken 垩:e 垸:yuan 埃:ai
埋:mai,man 埏:yan 埔:bu,pu 埳:kan 埶:shi 培:pei 埽:sao 堆:dui 堇:jin 堕:duo,hui
堡:bao,bu,pu 堤:di 堪:kan 堵:du 塌:ta 塔:ta 塞:sai,se 填:tian 墅:shu 增:zeng 墨:mo
壅:yong 壑:he 声:sheng 壳:ke,qiao 壹:yi 处:chu 夏:xia 夕:xi 大:da,dai,tai 太:tai
夫:fu 夭:yao 央:yang 夯:ben,hang 失:shi 头:tou 夸:kua 夹:jia 奄:yan 奇:ji,qi 奋:fen
奎:kui 奏:zou 契:qi 奔:ben 套:tao 奠:dian 奥:ao 女:nv 奸:jian 她:ta 好:hao 妃:fei
妄:wang 妓:ji 妖:yao 妗:jin 妙:miao 妞:niu 妨:fang 妯:zhou 妻:qi 姐:jie 姓:xing
委:wei 姘:pin 姣:jiao 姥:lao,mu 姬:ji 姱:kua 姿:zi 娃:wa 娆:rao 娉:ping 娜:na,nuo
娩:mian 娶:qu 婀:e 婑:wo 媒:mei 媛:yuan 媠:tuo 媮:tou 媿:kui 嫖:piao 嫚:man 嬉:xi
嬗:shan 嬛:huan 子:zi 孱:chan 學:xue 宁:ning 它:ta 宅:zhai 守:shou 完:wan 宛:wan
客:ke 宪:xian 害:hai 家:jia 容:rong 宿:su,xiu 察:cha 寨:zhai 寰:huan 寸:cun 寺:si
寻:xin,xun 封:feng 射:she,ye 将:jiang,qiang 尉:wei,yu 少:shao 尚:shang 尥:liao
尨:mang,meng 尹:yin 尺:che,chi 尼:ni 尽:jin 尾:wei,yi 尿:niao,sui 居:ju 屈:qu
屎:shi 屏:bing,ping 属:shu,zhu 屯:tun 岂:kai,qi 岗:gang 岬:jia 岭:ling 峒:dong
峙:zhi 崎:qi 崛:jue 崴:wei 嵌:qian 嵬:wei 嶙:lin 巡:xun 巢:chao 巨:ju
差:cha,chai,ci 己:ji 已:yi 巷:hang,xiang 币:bi 市:shi 帆:fan 帑:tang 帔:pei 帕:pa
帖:tie 帘:lian 帧:zhen 幅:fu 幕:mu 幢:chuang 幪:meng 干:gan,qian 平:ping 年:nian
并:bing 幸:xing 幺:yao 幼:you 幾:ji 广:guang 庄:zhuang 庇:bi 庋:gui 应:ying 底:di
度:du,duo 康:kang 庸:yong 异:yi 弄:long,nong 式:shi 弟:di,ti 強:jiang 弸:peng
弹:dan,tan 强:jiang,qiang 彀:gou 彈:dan 彊:jiang,qiang 当:dang 彗:hui 彦:yan
彬:bin 彭:peng 彷:pang 往:wang 待:dai 徊:huai 徕:lai 得:de,dei 徙:xi 御:yu 徧:bian
徵:zheng,zhi 徼:jiao,yao 忍:ren 忐:tan 忑:te 忘:wang 忤:wu 忧:you 忪:song,zhong
忮:zhi 忱:chen 忳:tun 忾:kai 怀:huai 怍:zuo 怏:yang 怔:zheng 怕:pa 怙:hu 怛:da
怜:lian 思:sai,si 怠:dai 怨:yuan 怫:fu 怵:chu 恁:nen 恃:shi 恍:huang 恫:dong
恶:e,wu 悄:qiao 悖:bei 悛:quan 惊:jing 惏:lin 惓:juan 惙:chuo 惛:hun 惟:wei 惰:duo
惴:zhui 惹:re 愀:qiao 愁:chou 愉:yu 意:yi 愒:kai 愓:dang 感:gan 愠:yun 愬:su
慌:huang 慎:shen 慢:man 慴:she 憷:chu 憾:han 懊:ao 懔:lin 懵:meng 懿:yi 戎:rong
戏:xi 或:huo 戗:qiang 戚:qi 房:fang,pang 扁:bian,pian 扃:jiong 扇:shan 才:cai
扎:za,zha 扑:pu 扒:ba,pa 打:da 扛:gang,kang 扞:han 扢:jie 扫:sao 扭:niu 扮:ban
扰:rao 扱:xi 扳:ban 扶:fu 批:pi 找:zhao 承:cheng 技:ji 抂:kuang 抄:chao 把:ba 投:tou
抗:kang 折:she,zhe 抡:lun 抢:qiang 抨:peng 抬:tai 抱:bao 抵:di 抹:ma,mo 押:ya
拂:bi,fu 担:dan 拆:chai 拈:nian 拉:la 拊:fu 拌:ban 拍:pai 拒:ju 拓:ta,tuo 拔:ba
拖:tuo 拗:ao,niu 拘:ju 拚:pan 招:zhao 拜:bai 拧:ning 择:ze,zhai 括:gua,kuo 拮:jie
拱:gong 拶:zan 拼:pin 拽:zhuai 拾:she,shi 指:zhi 挈:qie 挎:kua 挑:tiao 挝:zhua
挟:jia,xie 挡:dang 挣:zheng 挨:ai 挫:cuo 振:zhen 挲:sa 挺:ting 挼:ruo 捂:wu 捆:kun
捋:luo,lv 捎:shao 捐:juan 捧:peng 捩:lie 捭:bai 据:ju 捰:luo 捱:ai 捲:juan 捶:chui
捷:jie 捻:nian 掀:xian 掇:duo 掉:diao 掊:pou 掎:ji 排:pai 掖:ye 掘:jue 掞:shan
掠:lve 探:tan 接:jie 控:kong 掩:yan 措:cuo 掴:guai,guo 掷:zhi 掸:dan 掺:chan 揍:zou
描:miao 提:di,ti 插:cha 揖:yi 握:wo 揣:chuai 揭:jie,qi 援:yuan 搁:ge 搂:lou
搋:chuai 搓:cuo 搔:sao 搕:ke 搜:sou 搞:gao 搤:e 搥:chui 搨:ta 搬:ban 搭:da 搰:hu
搶:qiang 摋:sa 摧:cui 摩:ma,mo 摸:mo 摹:mo 摽:biao 撅:jue 撇:pie 撒:sa 撕:si 撩:liao
播:bo 撮:cuo,zuo 撰:zhuan 擂:lei 擗:pi 擘:bai,bo 擞:sou 擿:ti,zhai,zhi
攒:cuan,zan 攘:rang 攞:luo 支:zhi 放:fang 政:zheng 敌:di 救:jiu 敖:ao 教:jiao
敞:chang 散:san 敦:dui,dun 敩:xiao 数:shu,shuo 斗:dou 料:liao 斜:xie 斡:wo 斥:chi
斫:zhuo 斯:si 方:fang 於:wu 施:shi 旁:pang 旄:mao 旋:xuan 族:zu 无:mo,wu 既:ji
旬:xun 旰:gan 昂:ang 昆:kun 昌:chang 明:ming 昏:hun 昔:xi 昙:tan 映:ying 春:chun
昧:mei 昭:zhao 是:shi 昵:ni 晃:huang 晕:yun 景:jing,ying 智:zhi 暇:xia 暖:nuan
暧:ai 暴:bao,pu 曝:bao,pu 曲:qu 更:geng 曷:he 曾:ceng,zeng 最:zui 月:yue 有:you
服:fu 朘:juan 朝:chao,zhao 期:ji,qi 末:mo 本:ben 札:zha 术:shu,zhu 朱:zhu
朴:piao,po,pu 机:ji 杂:za 杅:yu 杆:gan 杈:cha 杉:sha,shan 杌:wu 杓:shao 杕:duo
杜:du 杠:gang 杷:pa 杼:zhu 枇:pi 枉:wang 枋:fang 析:xi 枕:zhen 枘:rui 果:guo 枝:zhi
枞:cong,zong 枯:ku 枳:zhi 枸:gou,ju 柁:duo 柏:bai,bo 某:mou 柑:gan 柙:xia
柚:you,zhou 柜:gui 柞:zha,zuo 柢:di 查:cha,zha 柮:duo 柱:zhu 柴:chai 栅:shan,zha
栎:li 栓:shuan 栖:qi,xi 栗:li 校:jiao,xiao 样:yang 核:he,hu 格:ge 栽:zai 桁:heng
桃:tao 桄:guang 桅:wei 框:kuang 桐:tong 桔:jie,ju 桧:gui 梢:shao 梧:wu 梭:suo 梯:ti
棁:zhuo 棋:qi 棍:gun 棣:di 棬:juan 棱:leng 棹:zhao 棺:guan 椅:yi 椎:chui,zhui
椹:shen 楂:zha 楔:xie 楛:ku 楞:leng 楮:chu 楯:dun 極:ji 楷:kai 楺:rou 概:gai 榔:lang
榜:bang 槁:gao 構:gou 槌:chui 槍:qiang 槛:jian,kan 槟:bin,bing 槽:cao 槿:jin
樊:fan 模:mo,mu 横:heng 橙:cheng 檀:tan 檐:yan 檗:bo 檠:qing 次:ci 欬:kai 欹:qi
款:kuan 欿:kan 歃:sha 歇:xie 歙:she 正:zheng 歪:wai 歹:dai 殍:piao 殖:shi,zhi
殷:yan,yin 殽:yao 毁:hui 毂:gu 毋:wu 母:mu 毒:du 比:bi 毛:mao 氏:shi,zhi
氓:mang,meng 气:qi 汀:ting 汁:zhi 汕:shan 汗:han 池:chi 汤:shang,tang 汩:gu
汪:wang 汶:wen 汽:qi 沂:yi 沈:chen,shen 沌:dun 沏:qi 沓:da,ta 沙:sha 没:mei,mo
沤:ou 沮:ju 沱:tuo 沸:fei 油:you 治:zhi 沽:gu 沾:zhan 沿:yan 泄:xie 泆:yi 泊:bo,po
泌:bi,mi 泛:fan 泞:ning 泡:pao 波:bo 泣:qi 泥:ni,nie 注:zhu 泯:min 泵:beng 泷:long
洁:jie 洋:yang 洒:sa 洗:xi 洞:dong 洩:xie 洳:ru 活:huo 洼:wa 洽:qia 派:pai 浅:qian
浆:jiang 浍:kuai 济:ji 浒:hu,xu 浚:jun 浩:hao 浪:lang 浸:jin 涂:tu 涉:she 涌:yong
涎:xian 涓:juan 涔:cen 涡:guo,wo 涣:huan 涨:zhang 涮:shuan 液:ye 涵:han 淋:lin
淌:tang 淑:shu 淖:nao 淜:peng 淡:dan 淫:yin 淬:cui 淳:chun 混:gun,hun 淹:yan
添:tian 清:qing 渐:jian 渑:mian 渝:yu 渟:ting 渠:qu 温:wen 渫:xie 港:gang 渴:ke
游:you 湃:pai 湔:jian 湛:zhan 湫:jiao 湮:yan 溃:hui,kui 溅:jian 溉:gai 溓:lian
溘:ke 溜:liu 溥:pu 溪:xi 溯:su 溲:sou 溴:xiu 溷:hun 溺:ni,niao 溽:ru 滂:pang 滇:dian
滋:zi 滑:hua 漂:piao 漆:qi 漏:lou 演:yan 漕:cao 漢:han 漯:ta 潘:pan 潠:xun 潢:huang
潦:lao,liao 潭:tan 潼:tong 澄:cheng,deng 澎:peng 澡:zao 澭:yong 澳:ao 澹:dan,tan
激:ji 濊:hui 濡:ru 濩:hu 濯:zhuo 瀑:pu 瀼:rang 灌:guan 火:huo 灯:deng 炎:yan 炕:kang
炮:pao 炰:fou 炸:zha 烊:yang 烙:lao,luo 烛:zhu 烟:yan 焉:yan 焚:fen 焦:jiao 焯:zhuo
煎:jian 煞:sha 煦:xu 煨:wei 熏:xun 熙:xi 熟:shu 熨:yu,yun 熬:ao 熯:han 燋:jiao,zhuo
燎:liao 燕:yan 燥:zao 爆:bao 爪:zhao,zhua 父:fu 爽:shuang 片:pian 牙:ya 牟:mou,mu
牢:lao 犄:ji 犍:jian,qian 犴:an 犹:you 狂:kuang 狟:huan 狠:hen 狡:jiao 狧:shi 狶:xi
狼:lang 猎:lie 猫:mao 猲:ge 玄:xuan 率:lv,shuai 王:wang 玢:fen 珲:hui 琅:lang
琢:zhuo,zuo 瑗:yuan 瑱:tian 瓦:wa 甄:zhen 甘:gan 甚:shen 甫:fu 由:you 甸:dian
畏:wei 留:liu 畜:chu,xu 番:fan,pan 畸:ji 疆:jiang 疐:zhi 疑:yi 疔:ding 疙:ge
疟:nve,yao 疣:you 疴:ke 疵:ci 疹:zhen 疽:ju 症:zheng 痌:tong 痒:yang 痕:hen 痡:pu
痪:huan 痱:fei 瘅:dan 瘕:jia 瘟:wen 瘩:da 瘪:bie 癌:ai 登:deng 白:bai 百:bai
的:de,di 皇:huang 皋:gao 皓:hao 皖:wan 盅:zhong 监:jian 盒:he 盖:gai
盛:cheng,sheng 盟:meng 盯:ding 相:xiang 盹:dun 盼:pan 盾:dun 省:sheng,xing 看:kan
眙:yi 眠:mian 眩:xuan 眯:mi 眴:shun 眼:yan 着:zhao,zhe,zhu,zhuo 睛:jing 睟:sui
睢:sui 睫:jie 睽:kui 瞋:chen 瞑:ming 瞠:cheng 瞢:meng 瞥:pie 瞭:liao 瞶:gui
瞿:ju,qu 矜:guan,jin 矣:yi 知:zhi 矫:jiao 石:dan,shi 矸:gan 砉:hua 砌:qi 研:yan
砥:di 砲:pao 硅:gui 硎:xing 硝:xiao 硫:liu 硬:ying 碌:liu,lu 碓:dui 碟:die 碡:zhou
碣:jie 碱:jian 碴:cha 碻:qiao 磅:bang,pang 磕:ke 磝:ao 磨:mo 磬:qing 磷:lin 示:shi
祁:qi 祇:qi 祈:qi 祕:bi 祖:zu 祝:zhu 神:shen 祠:ci 票:piao 祭:ji 禁:jin 禅:chan,shan
福:fu 禺:yu 离:li 种:zhong 科:ke 秘:bi,mi 租:zu 秤:cheng 积:ji 称:chen,cheng 秸:jie
移:yi 稍:shao 税:shui 稠:chou 稽:ji,qi 稾:gao 穰:rang 穴:xue 究:jiu 空:kong
穿:chuan 窈:yao 窒:zhi 窕:tiao 窖:jiao 窗:chuang 窨:yin 窬:yu 窾:kuan 立:li 站:zhan
章:zhang 童:tong 竺:zhu 竿:gan 笏:hu 笼:long 筋:jin 筑:zhu 筒:tong 答:da 筠:yun
箴:zhen 箸:zhu 簇:cu 簪:zan 簸:bo 簿:bu 籍:ji,jie 籓:fan 粘:nian,zhan 粥:yu,zhou
精:jing 糊:hu 糜:mei,mi 糨:jiang 系:ji,xi 紊:wen 累:lei 結:jie 絜:jie,xie 絮:xu
綈:ti 綦:qi 綮:qing 繁:fan 繇:yao 纚:sa 纛:dao 红:gong,hong 纤:qian,xian 纥:ge,he
约:yue 纪:ji 纶:guan,lun 纹:wen 经:jing 结:jie 绕:rao 给:gei,ji 络:lao,luo 绨:ti
绩:ji 绰:chao,chuo 绷:beng 综:zong 绿:lu,lv 缉:ji,qi 缊:yun 缝:feng 缥:piao
缩:su,suo 缪:miu,mou 缴:jiao 缺:que 罔:wang 罕:han 罗:luo 罢:ba 羡:xian 羸:lei
羹:geng 羽:yu 翁:weng 翘:qiao 耆:qi,shi 而:er 耐:nai 耗:hao 耙:ba,pa 耥:tang 耳:er
耶:ye 耷:da 聊:liao 聒:guo 聘:pin 聱:ao 肆:si 肉:rou 肋:le,lei 肌:ji 肖:xiao 肚:du
肢:zhi 肥:fei 肩:jian 肫:zhun 肮:ang 育:yu 肺:fei 胆:dan 背:bei 胔:zi 胖:pan,pang
胜:sheng 胞:bao 胥:xu 胯:kua 胳:ge 胶:jiao 胺:an 能:neng 脂:zhi 脉:mai,mo 脊:ji
脏:zang 脔:luan 脖:bo 脚:jiao 脩:xiu 脯:pu 脱:tuo 脾:pi 腊:la,xi 腌:a,yan 腔:qiang
腧:shu 腯:tu 腱:jian 膀:bang,pang 膊:bo 膏:gao 膘:biao 膛:tang 膨:peng 膻:dan,shan
臂:bei,bi 臆:yi 臊:sao 臡:ni 臢:za 臧:zang 臭:chou,xiu 至:zhi 致:zhi 舂:chong
舌:she 舍:she 舒:shu 舔:tian 般:ban,bo,pan 舳:zhu 良:liang 色:se,shai 艴:fu
艽:jiao 艾:ai,yi 艿:reng 节:jie 芋:yu 芍:shao 芒:mang 芟:shan 芥:gai,jie 芦:lu
芫:yan,yuan 芭:ba 芯:xin 苑:yuan 苔:tai 苕:shao,tiao 苛:ke 苞:bao 苟:gou 苣:ju,qu
苤:pie 若:re,ruo 苦:ku 苫:shan 英:ying 苴:ju 苹:ping 茁:zhuo 茄:jia,qie 茜:qian,xi
茧:jian 茫:mang 茬:cha 茸:rong 荃:quan 草:cao 荑:yi 荒:huang 荠:qi 荤:hun,xun
荥:xing 荨:xun 荫:yin 荷:he 荼:tu 荽:sui 莆:pu 莎:suo 莘:shen,xin 莞:guan,wan
莠:you 莨:lang,liang 莩:fu,piao 莫:mo,mu 莳:shi 莽:mang 菀:wan 菌:jun 菟:tu 菩:pu
菲:fei 菹:zu 菽:shu 萁:qi 萌:meng 萎:wei 落:la,lao,luo 葆:bao 葑:feng 著:zhu,zhuo
葚:ren,shen 葛:ge 葡:pu 董:dong 葭:jia 葱:cong 蒐:sou 蒙:meng 蒡:bang 蒲:pu 蒿:hao
蓑:suo 蓝:lan 蓬:peng 蓼:liao 蓿:xu 蔓:man,wan 蔚:wei,yu 蔫:nian 蔬:shu 蔽:bi
蕃:bo,fan 蕈:xun 蕉:jiao 蕊:rui 薄:bao,bo,bu 藉:ji,jie 藋:diao 藏:cang,zang
藩:fan 藿:huo 蘖:nie 虎:hu 虑:lv 虫:chong 虮:ji 虹:hong 虺:hui 虾:ha,xia 蚂:ma
蚌:bang,beng 蚕:can 蚣:gong 蚤:zao 蚴:you 蚶:han 蛆:qu 蛇:she,yi 蛙:wa 蛤:ge,ha
蛾:e 蜓:ting 蜕:tui 蜚:fei 蜡:la 蜮:yu 蜷:quan 蜻:qing 蝍:ji 蝎:xie 蝶:die 螃:pang
螫:shi,zhe 蟆:ma 蟒:mang 蟠:pan 蠖:huo 蠡:li 血:xie,xue 行:hang,heng,xing 衍:yan
衙:ya 衣:yi 衩:cha 衰:shuai 衷:zhong 衿:jin 袂:mei 袍:pao 袒:tan 袜:wa 袢:pan 袤:mao
被:bei,pi 袷:jia,qia 裂:lie 裎:cheng 裨:bi,pi 裳:chang,shang 裼:xi 裾:ju 褎:you
褚:zhu 褥:ru 褪:tui,tun 褶:zhe 要:yao 覃:tan 见:jian,xian 观:guan 觉:jiao,jue
觑:qu 角:jiao,jue 觜:zi,zui 解:jie,xie 言:yan 訇:hong 詀:zhan 詹:zhan 謦:qing
謷:ao 许:xu 论:lun 讽:feng 识:shi,zhi 诘:ji,jie 语:yu 说:shui,shuo,yue 读:dou,du
谁:shei,shui 调:diao,tiao 谜:mi 谩:man 谷:gu,yu 谿:xi 豁:hua,huo 豉:chi 豚:tun
豫:yu 貉:hao,he 貌:mao 貤:yi 贲:ben,bi 贾:gu,jia 赚:zhuan,zuan 赦:she 赫:he 赳:jiu
赶:gan 趁:chen 趄:ju,qie 超:chao 越:yue 趑:zi 趟:tang 趣:qu 足:zu 趵:bao 趼:jian
趿:ta 跂:qi 跄:qiang 跅:tuo 跋:ba 跌:die 跐:ci 跑:pao 跗:fu 跛:bo 跣:xian 跨:kua
跫:qiong 跬:kui 路:lu,luo 跳:tiao 跶:da 跼:ju 踅:xue 踉:liang 踏:ta 踔:chuo 踖:ji
踡:quan 踢:ti 踣:bo 踧:cu 踩:cai 踱:duo 踵:zhong 踹:chuai 蹄:ti 蹊:qi,xi 蹓:liu
蹠:zhi 蹬:deng 蹭:ceng 蹴:cu 蹶:jue 蹻:jue 躇:chu 身:shen 躺:tang 车:che,ju
轧:ga,ya,zha 转:zhuai,zhuan 轲:ke 轴:zhou 载:zai 辗:zhan 辟:bi,pi 辨:bian 边:bian
达:da 迆:yi 过:guo 迎:ying 运:yun 还:hai,huan 这:zhe 迤:yi 迦:jia 迫:pai,po 迭:die
迷:mi 迹:ji 追:zhui 适:shi 透:tou 逐:zhu 逗:dou 通:tong 逞:cheng 造:zao 逢:feng
逮:dai 逾:yu 遁:dun 遂:sui 遇:yu 遒:qiu 道:dao 遗:wei,yi 遛:liu 遢:ta 遣:qian 適:di
邈:miao 邋:la 邑:yi 邓:deng 邢:xing 那:na,nei 邪:xie,ye 邯:han 邺:ye 郄:xi 郎:lang
郢:ying 部:bu 郭:guo 都:dou,du 酊:ding 酖:dan 酢:cu 酣:han 酪:lao 酾:shi 酿:niang
醋:cu 醍:ti 醎:xian 醒:xing 醮:jiao 采:cai 里:li 重:chong,zhong 野:ye 量:liang
金:jin 鐀:gui 钉:ding 钢:gang 钥:yao,yue 钻:zuan 钿:dian 铅:qian,yan
铛:cheng,dang 铤:ding,ting 铮:zheng 铺:pu 锏:jian 锯:ju 镐:gao,hao 镝:di 镪:qiang
长:chang,zhang 閒:jian 閧:hong 闇:an 间:jian 闷:men 阙:que 阮:ruan 阻:zu 阿:a,e
陀:tuo 陂:bei,pi,po 附:fu 陆:liu,lu 降:jiang,xiang 限:xian 陟:zhi 除:chu 陬:zou
陶:tao 隆:long 隋:sui 隔:ge 隗:wei 隘:ai 障:zhang 隶:li 隽:juan,jun 难:nan
雀:qiao,que 雅:ya 雇:gu 雉:zhi 雨:yu 零:ling 雷:lei 需:xu 霄:xiao 震:zhen 霍:huo
霰:xian 露:lou,lu 霸:ba 霾:mai 青:qing 靓:jing,liang 非:fei 靡:mi 靦:tian 革:ge,ji
靶:ba 鞅:yang 鞋:xie 鞘:qiao,shao 鞞:pi 鞠:ju 鞫:ju 韡:wei 顿:du,dun 颇:po
颈:geng,jing 颉:jie,xie 颌:he 颏:ke 颤:chan,zhan 食:shi,si,yi 餐:can 餔:bu 饮:yin
饹:le 馏:liu 馥:fu 騃:ai,si 驮:duo 驯:xun 骀:dai 骠:biao,piao 骨:gu 骰:tou 骸:hai
體:ti 高:gao 髻:ji 鬲:ge 鬻:yu 魁:kui 魄:po 魏:wei 鲑:gui 鲜:xian 鲭:qing 鳷:zhi
鴂:jue 鶗:ti 鸟:diao,niao 鹄:gu,hu 鹘:gu,hu 鹿:lu 麇:jun,qun 麕:jun 麻:ma 麽:mo
黾:meng,min 鼎:ding 齐:ji,qi 龈:yin 龟:gui,jun,qiu
"""
