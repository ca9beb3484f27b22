// The message catalogue: every string the user reads, in Simplified Chinese
// (the default) and English. The choice is kept in localStorage. A missing
// key is logged (the browser tests fail on it) and shown as the key.

const zh = {
  "app.name": "对口", "app.skip": "跳到内容", "app.nav": "主导航", "app.language": "语言", "app.logout": "退出",
  "nav.board": "转诊看板", "nav.my_referrals": "我的转诊", "nav.referrals": "转诊单", "nav.new_referral": "新建转诊", "nav.new_down_referral": "新建下转", "nav.sessions": "远程会诊", "nav.statistics": "统计",
  "page.not_found": "找不到此页面", "page.not_allowed": "您的角色不能打开此页面", "page.failed": "页面加载失败",
  "error.network": "无法连接服务器，请稍后重试", "error.stale": "该转诊单已被他人更新，已重新载入", "err.required": "必填", "err.needs_diagnosis": "至少需要一个诊断", "err.icd10": "应为 ICD-10 编码，如 I21.0、I63 或 S06.5", "err.national_id_check": "校验位不正确，请核对身份证号是否输错", "err.not_future": "不能晚于今天", "err.not_past": "不能早于现在", "err.green_priority": "绿色通道须为紧急或急诊", "err.grade1_ambulance": "Ⅰ级转运风险须用救护车", "err.grade1_doctor": "Ⅰ级转运风险须由医生陪同", "err.after_from": "须晚于起始时间", "err.twice": "重复", "err.phone": "电话只能包含数字、空格、短横线和开头的 +", "form.fix_fields": "请更正标出的字段",
  "login.title": "城乡医院对口支援协作平台", "login.tagline": "双向转诊 · 绿色通道 · 远程会诊 · 项目管理", "login.heading": "登录",
  "login.username": "用户名", "login.password": "密码", "login.submit": "登录", "login.failed": "用户名或密码不正确", "login.locked": "尝试次数过多，请稍后再试",
  "home.title": "欢迎", "home.signed_in_as": "{name}（{roles}）已登录", "home.api_hint": "此角色通过接口管理平台：",
  "role.admin": "系统管理员", "role.auditor": "审计员", "role.program_office": "项目办", "role.county_doctor": "县级医生", "role.specialist": "专科医生", "role.referral_desk": "转诊办", "role.dispatched_doctor": "派驻医生",
  "sessions.title": "远程会诊", "sessions.empty": "暂无会诊请求。",
  "live.connecting": "连接中…", "live.live": "实时", "live.reconnecting": "重新连接中…", "live.off": "", "live.ticket_changed": "转诊单 {number} 现为：{status}",
  "doctor.title": "我的转诊", "doctor.title_other": "本院转诊单", "doctor.my_up": "我院上转", "doctor.incoming_down": "接收的下转", "doctor.sent": "本院转出", "doctor.received": "本院接收", "doctor.none": "暂无转诊单",
  "col.number": "转诊单号", "col.patient": "患者", "col.diagnosis": "主要诊断", "col.priority": "紧急程度", "col.status": "状态", "col.other_hospital": "对方医院", "col.updated": "更新时间", "col.from": "转出医院", "col.schedule": "床位/预约",
  "status.draft": "草稿", "status.submitted": "待受理", "status.claimed": "受理中", "status.accepted": "已接收", "status.rejected": "已拒绝", "status.info_requested": "需补充资料", "status.redirected": "已改转", "status.scheduled": "已安排", "status.in_transit": "转运中", "status.arrived": "已到达", "status.completed": "已完成", "status.closed": "已关闭", "status.cancelled": "已取消", "status.no_show": "未到达",
  "priority.emergency": "急诊", "priority.urgent": "紧急", "priority.routine": "普通",
  "band.green": "绿色通道", "band.emergency": "急诊", "band.urgent": "紧急", "band.routine": "普通",
  "green.short": "绿色通道", "green.title": "急危重症绿色通道", "green.chest_pain": "胸痛", "green.stroke": "卒中", "green.trauma": "创伤", "green.maternal": "危重孕产妇", "green.neonatal": "危重新生儿", "green.other_critical": "其他急危重症",
  "direction.up": "上转", "direction.down": "下转",
  "risk.1": "Ⅰ级（高风险）", "risk.2": "Ⅱ级（中风险）", "risk.3": "Ⅲ级（低风险）",
  "transport.ambulance": "救护车", "transport.hospital_vehicle": "医院车辆", "transport.self": "自行前往", "transport.other": "其他",
  "escort.doctor": "医生陪同", "escort.nurse": "护士陪同", "escort.family": "家属陪同", "escort.none": "无人陪同",
  "sex.male": "男", "sex.female": "女", "sex.unknown": "未知",
  "schedule.bed": "床位", "schedule.appointment": "门诊预约",
  "reject.no_capacity": "床位或能力不足", "reject.outside_scope": "超出诊疗范围", "reject.incomplete_information": "资料不全", "reject.not_indicated": "无转诊指征", "reject.patient_declined": "患者拒绝", "reject.other": "其他原因",
  "outcome.treated_outpatient": "门诊处理", "outcome.discharged": "住院治疗后出院", "outcome.referred_back": "转回基层", "outcome.transferred_elsewhere": "转往他院", "outcome.left_against_advice": "自动出院", "outcome.died": "死亡",
  "breach.claim": "受理超时", "breach.decide": "决定超时",
  "action.confirm": "确定", "action.cancel": "取消", "action.submit": "提交", "action.claim": "受理", "action.release": "放回队列", "action.accept": "接收", "action.reject": "拒绝", "action.request_info": "要求补充资料", "action.resubmit": "补充后重新提交", "action.redirect": "改转", "action.schedule": "安排床位/预约", "action.depart": "患者已出发", "action.arrive": "患者已到达", "action.complete": "完成并反馈", "action.close": "已阅关闭", "action.mark_no_show": "标记未到达", "action.edit": "修改", "action.create": "创建",
  "form.title_up": "新建上转", "form.title_edit": "修改转诊单 {number}", "form.save_changes": "保存修改", "form.changes_saved": "修改已保存", "form.title_down": "新建下转", "form.based_on": "接续转诊单 {number}", "form.down_summary_from": "接续上转单 {number}：",
  "form.section.patient": "患者", "form.section.consent": "知情同意", "form.section.destination": "转往", "form.section.clinical": "病情与诊断", "form.section.transport": "转运", "form.section.attachments": "附件",
  "form.search_name": "按姓名查找", "form.search_name_hint": "输入姓名开头，按回车", "form.search_id": "按身份证号查找", "form.search_id_hint": "完整的18位身份证号", "form.search": "查找",
  "form.patient_results": "查找结果", "form.no_patient": "没有找到患者，可在下方登记", "form.change": "更换", "form.choose": "请选择",
  "form.pick_patient_first": "请先选择或登记患者", "form.no_consent": "尚无有效的转诊知情同意", "form.consent_recorded": "已记录知情同意",
  "form.receiving_hospital": "接收医院", "form.receiving_department": "接收科室", "form.referring_department": "本院科室",
  "form.green": "急危重症绿色通道", "form.green_hint": "胸痛、卒中、创伤、危重孕产妇、危重新生儿", "form.green_category": "绿色通道类别",
  "form.priority": "紧急程度", "form.transfer_risk": "转运风险分级", "form.transfer_risk_hint": "Ⅰ级需救护车并由医生陪同",
  "form.diagnoses": "诊断（ICD-10）", "form.dx_placeholder": "输入编码或中文名称，如 I21 或 心肌梗死", "form.dx_none": "尚未添加诊断", "form.dx_principal": "主要诊断", "form.dx_added": "已添加诊断 {code}", "form.dx_remove": "删除诊断 {code}", "form.dx_text": "诊断 {code} 的描述",
  "form.reason": "转诊原因", "form.summary": "病情摘要", "form.treatment": "已给予的治疗",
  "form.transport_mode": "转运方式", "form.transport_escort": "陪同", "form.window_from": "希望接收时间（起）", "form.window_to": "希望接收时间（止）",
  "form.files": "上传文件", "form.choose_files": "选择文件…", "form.files_hint": "PDF、JPEG、PNG 或 DICOM，每个不超过 50 MiB", "form.uploading": "正在上传 {name}…", "form.uploaded": "已上传 {name}", "form.upload_failed": "{name} 上传失败", "form.remove": "移除",
  "form.save_draft": "保存草稿", "form.submit": "提交转诊", "form.draft_saved": "草稿已保存", "form.submitted": "已提交转诊单 {number}",
  "patient.new": "登记新患者", "patient.name": "姓名", "patient.sex": "性别", "patient.birth_date": "出生日期", "patient.national_id": "身份证号", "patient.phone": "电话", "patient.address": "住址", "patient.register": "登记", "patient.registered": "已登记患者 {name}",
  "consent.new": "记录新的知情同意", "consent.statement": "患者或其监护人、近亲属已知悉转诊的目的与风险，同意转诊并同意向接收医院提供病历资料。", "consent.kind": "同意人", "consent.name": "同意人姓名", "consent.relationship": "与患者关系", "consent.note": "备注", "consent.record": "记录同意",
  "consent.by.patient": "患者本人", "consent.by.guardian": "监护人", "consent.by.relative": "近亲属",
  "ticket.draft_number": "（草稿）", "ticket.details": "转诊信息", "ticket.patient": "患者", "ticket.direction": "方向", "ticket.from": "转出", "ticket.to": "转入", "ticket.transfer_risk": "转运风险", "ticket.transport": "转运", "ticket.submitted_at": "提交时间",
  "ticket.claim_by": "受理期限", "ticket.decide_by": "决定期限", "ticket.window": "希望接收时间", "ticket.schedule": "安排", "ticket.exam_slip": "检查单号", "ticket.fee_waived": "免挂号费", "ticket.bed": "绿色通道床位", "ticket.bed_held": "已预留",
  "ticket.reject_reason": "拒绝原因", "ticket.decision_note": "处理意见", "ticket.info_question": "需补充", "ticket.info_answer": "补充说明", "ticket.outcome": "诊疗结果", "ticket.end_reason": "终止原因",
  "ticket.redirected_to": "改转至", "ticket.redirected_from": "改转自", "ticket.based_on": "接续", "ticket.open_linked": "打开关联转诊单",
  "ticket.diagnoses": "诊断", "ticket.reason": "转诊原因", "ticket.summary": "病情摘要", "ticket.treatment": "已给予的治疗", "ticket.attachments": "附件",
  "ticket.actions": "可办理", "ticket.no_actions": "当前无需您办理", "ticket.you_hold": "您正在受理此单，离开前请完成处理或放回队列。", "ticket.held_until": "为您保留至 {at}，页面打开期间自动续期", "ticket.lease_pending": "正在确认保留…", "ticket.history": "处理记录", "ticket.escalations": "超时升级", "ticket.due": "期限", "ticket.raised": "升级于",
  "ticket.slip": "打印转诊单", "ticket.write_down": "下转回基层", "ticket.done": "{action}：现为{status}", "ticket.lease_lost": "受理已超时，该单已交还队列",
  "dialog.reason_code": "拒绝原因", "dialog.reason": "说明", "dialog.question": "需要补充的内容", "dialog.answer": "补充说明", "dialog.schedule_kind": "类型", "dialog.slot": "床位或诊室", "dialog.slot_hint": "如：心内科3病区12床", "dialog.at": "时间",
  "dialog.outcome": "诊疗结果", "dialog.feedback": "反馈给转出医院", "dialog.accept_note": "接收说明（可选）", "dialog.target_hospital": "改转医院", "dialog.target_department": "改转科室",
  "beds.title": "绿色通道预留床位", "beds.summary": "共 {size} 张，已占用 {used} 张，空闲 {free} 张", "beds.free": "空闲", "beds.held": "占用", "beds.for_this": "将预留给本单", "beds.in_use_count": "{n} 张已占用", "beds.unknown": "无法读取床位池", "beds.none_free": "没有空闲的预留床位：请先调整床位池或联系科室", "beds.green_hint": "接收绿色通道患者时自动预留一张床位。",
  "desk.title": "转诊看板", "desk.queue": "待处理队列", "desk.counts": "队列 {n} 单 · 绿色通道 {green} · 超时 {breached}", "desk.claim_next": "受理下一单", "desk.nothing_to_claim": "队列中没有可受理的转诊单", "desk.taken": "该单已被同事受理",
  "desk.sound_on": "提示音：开", "desk.sound_off": "提示音：关", "desk.empty": "队列已清空", "desk.breached": "已超时", "desk.claim_in": "受理剩余", "desk.decide_in": "决定剩余", "desk.countdown": "剩余时间", "desk.waiting_since": "{at} 起等待",
  "desk.held_by_you": "您正在受理", "desk.held_by_colleague": "同事受理中", "desk.continue": "继续处理", "desk.green_arrived": "绿色通道新单：", "desk.dismiss": "知道了", "desk.escalated": "{number} 已超时升级",
  "desk.inbound": "在途与到达", "desk.no_inbound": "暂无已接收待到达的患者",
  "stats.title": "转诊统计", "stats.from": "起始日期", "stats.to": "截止日期", "stats.show": "查看", "stats.tickets": "转诊单", "stats.up": "上转", "stats.down": "下转", "stats.green": "绿色通道", "stats.breaches": "超时",
  "stats.per_month": "每月上转与下转", "stats.time_to_decision": "从提交到决定的时间（按紧急程度）", "stats.breaches_by_band": "超时（按紧急程度）", "stats.top_by_county": "各县医院上转主要诊断",
  "stats.month": "月份", "stats.band": "紧急程度", "stats.median": "中位数", "stats.p90": "第90百分位", "stats.n": "单数", "stats.no_data": "无数据", "stats.show_table": "查看数据表", "stats.timing_legend": "条形：中位数；细线：第90百分位",
  "stats.hidden": "另有 {n} 项少于 {min} 例，不予显示",
  "unit.seconds": "{n} 秒", "unit.minutes": "{n} 分钟", "unit.hours": "{n} 小时",
  "nav.clinic": "远程门诊", "nav.incoming_sessions": "会诊请求",
  "kind.consult": "远程会诊", "kind.mdt": "多学科会诊", "kind.teaching_round": "教学查房", "kind.imaging_review": "影像会诊", "kind.expert_clinic": "专家远程门诊",
  "sstatus.requested": "待应答", "sstatus.accepted": "已接受", "sstatus.declined": "已拒绝", "sstatus.scheduled": "已排期", "sstatus.live": "进行中", "sstatus.ended": "已结束", "sstatus.opinion_signed": "意见已签署", "sstatus.acknowledged": "已确认", "sstatus.cancelled": "已取消",
  "sevent.request": "提出请求", "sevent.book": "预约门诊", "sevent.draft_opinion": "保存意见草稿", "sevent.accept": "接受", "sevent.decline": "拒绝", "sevent.schedule": "排期", "sevent.start": "开始", "sevent.end": "结束", "sevent.sign_opinion": "签署意见", "sevent.acknowledge": "确认已阅", "sevent.cancel": "取消", "sevent.addendum": "签署补充意见",
  "akind.image": "图片", "akind.pdf": "PDF", "akind.lab_result": "检验报告", "akind.dicom": "DICOM 影像",
  "slot.published": "可预约", "slot.booked": "已约满", "slot.cancelled": "已停诊",
  "scol.kind": "类型", "scol.deadline": "应答时限/时间",
  "sessions.incoming": "收到的请求", "sessions.sent": "本院发出的请求", "sessions.invited": "受邀参加", "sessions.new": "申请会诊", "sessions.left": "剩余 {time}", "sessions.breach": "已超时", "sessions.mine_only": "只看我发起的",
  "live.session_changed": "{kind}现为：{status}", "live.session_breach": "{kind}请求应答超时",
  "error.stale_session": "该会诊已被他人更新，已重新载入",
  "session.kind": "类型", "session.requesting": "申请方", "session.target": "受邀医院", "session.target_departments": "受邀科室", "session.departments_hint": "多学科会诊至少选两个科室，其他类型选一个", "session.attendees": "受邀参加的医院", "session.question": "会诊目的/问题", "session.schedule": "时间", "session.specialists": "专家", "session.decline_reason": "拒绝原因", "session.cancel_reason": "取消原因", "session.acknowledged_at": "申请方确认时间", "session.history": "经过", "session.escalations": "超时升级", "session.escalation": "应答时限 {due}，于 {raised} 升级", "session.requester": "申请医生", "session.start": "开始时间", "session.end": "结束时间", "session.new_title": "申请远程会诊", "session.section.what": "会诊类型与受邀方", "session.submit": "提交申请", "session.requested": "会诊申请已提交", "session.files_hint": "PDF、JPEG、PNG 或 DICOM（.dcm）", 
  "saction.accept": "接受", "saction.decline": "拒绝", "saction.schedule": "安排时间", "saction.start": "开始会诊", "saction.end": "结束会诊", "saction.acknowledge": "确认已阅", "saction.cancel": "取消申请", "saction.join": "进入会诊室", "saction.assign": "{dept}专家（账号 ID）", "saction.assign_hint": "默认由您本人承担；多学科会诊每个科室指定一位专家", "saction.note": "备注", "saction.reason": "原因",
  "opinion.title": "会诊意见", "opinion.findings": "所见", "opinion.impression": "印象/诊断意见", "opinion.recommendations": "建议", "opinion.referral_advised": "建议上转", "opinion.department": "建议转入科室", "opinion.referral": "转诊建议", "opinion.referral_yes": "建议上转至{dept}", "opinion.referral_no": "暂不需转诊", "opinion.signed": "签署", "opinion.digest": "签署摘要", "opinion.sign": "签署意见", "opinion.sign_hint": "签署后意见不可修改，只能追加签署的补充意见。", "opinion.sign_later": "会诊结束后方可签署；现在可保存草稿。", "opinion.sign_confirm_title": "签署会诊意见", "opinion.sign_confirm": "签署后不可修改。确认签署？", "opinion.signed_toast": "意见已签署", "opinion.pending": "会诊意见尚未签署。", "opinion.draft_referral": "按意见起草转诊单", "opinion.referral_drafted": "已起草转诊单，请核对后提交",
  "addenda.title": "补充意见", "addenda.none": "暂无补充意见", "addenda.new": "新的补充意见", "addenda.sign": "签署补充意见", "addenda.signed": "补充意见已签署",
  "consent.remote_consultation": "远程会诊知情同意", "consent.data_sharing": "同意向{hospital}共享病历", "consent.present": "已有", "consent.missing": "缺少", "consent.new_for": "登记：{what}",
  "clinic.title": "专家远程门诊", "clinic.slots": "可见号源", "clinic.none": "暂无号源", "clinic.when": "时间", "clinic.department": "科室", "clinic.places": "余号", "clinic.action": "操作", "clinic.book": "预约", "clinic.book_title": "预约专家远程门诊", "clinic.booked": "已预约", "clinic.cancel": "停诊", "clinic.cancelled": "已停诊", "clinic.publish": "发布号源", "clinic.publish_hint": "下周的号源须在本周一前发布（提前一周公示）。", "clinic.published": "号源已发布", "clinic.capacity": "号数", "clinic.slot_gone": "该号源已不可预约", "clinic.back": "返回号源列表",
  "roompage.title": "会诊室", "roompage.back": "返回会诊",
  "session.specialist_in": "{who}（{dept}）", "session.event_reason": "：{reason}", "list.sep": "、",
};

const en = {
  "app.name": "Duikou", "app.skip": "Skip to content", "app.nav": "Main navigation", "app.language": "Language", "app.logout": "Sign out",
  "nav.board": "Referral board", "nav.my_referrals": "My referrals", "nav.referrals": "Referrals", "nav.new_referral": "New referral", "nav.new_down_referral": "New down-referral", "nav.sessions": "Remote sessions", "nav.statistics": "Statistics",
  "page.not_found": "Page not found", "page.not_allowed": "Your role cannot open this page", "page.failed": "The page could not be loaded",
  "error.network": "Cannot reach the server; please try again", "error.stale": "Someone else changed this ticket; it has been reloaded", "err.required": "is required", "err.needs_diagnosis": "needs at least one diagnosis", "err.icd10": "must be an ICD-10 code like I21.0, I63 or S06.5", "err.national_id_check": "has a wrong check character; check the number for a typing error", "err.not_future": "must not be in the future", "err.not_past": "must not be in the past", "err.green_priority": "must be urgent or emergency for a green-channel referral", "err.grade1_ambulance": "must be ambulance for a grade I transfer risk", "err.grade1_doctor": "must be doctor for a grade I transfer risk", "err.after_from": "must be after from", "err.twice": "is listed twice", "err.phone": "must be a phone number of digits, spaces, dashes and an optional leading +", "form.fix_fields": "Please correct the marked fields",
  "login.title": "Paired hospital support", "login.tagline": "Two-way referral · green channel · remote consultation · program records", "login.heading": "Sign in",
  "login.username": "Username", "login.password": "Password", "login.submit": "Sign in", "login.failed": "Wrong username or password", "login.locked": "Too many attempts; please wait and try again",
  "home.title": "Welcome", "home.signed_in_as": "Signed in as {name} ({roles})", "home.api_hint": "This role manages the platform through the API:",
  "role.admin": "Administrator", "role.auditor": "Auditor", "role.program_office": "Program office", "role.county_doctor": "County doctor", "role.specialist": "Specialist", "role.referral_desk": "Referral desk", "role.dispatched_doctor": "Dispatched doctor",
  "sessions.title": "Remote sessions", "sessions.empty": "No session requests yet.",
  "live.connecting": "Connecting…", "live.live": "Live", "live.reconnecting": "Reconnecting…", "live.off": "", "live.ticket_changed": "Ticket {number} is now {status}",
  "doctor.title": "My referrals", "doctor.title_other": "Our hospital's referrals", "doctor.my_up": "Our up-referrals", "doctor.incoming_down": "Incoming down-referrals", "doctor.sent": "Sent", "doctor.received": "Received", "doctor.none": "No tickets",
  "col.number": "Ticket", "col.patient": "Patient", "col.diagnosis": "Principal diagnosis", "col.priority": "Priority", "col.status": "Status", "col.other_hospital": "Other hospital", "col.updated": "Updated", "col.from": "From", "col.schedule": "Bed / appointment",
  "status.draft": "Draft", "status.submitted": "Waiting", "status.claimed": "In review", "status.accepted": "Accepted", "status.rejected": "Rejected", "status.info_requested": "Information requested", "status.redirected": "Redirected", "status.scheduled": "Scheduled", "status.in_transit": "In transit", "status.arrived": "Arrived", "status.completed": "Completed", "status.closed": "Closed", "status.cancelled": "Cancelled", "status.no_show": "No show",
  "priority.emergency": "Emergency", "priority.urgent": "Urgent", "priority.routine": "Routine",
  "band.green": "Green channel", "band.emergency": "Emergency", "band.urgent": "Urgent", "band.routine": "Routine",
  "green.short": "Green channel", "green.title": "Green channel for critical patients", "green.chest_pain": "Chest pain", "green.stroke": "Stroke", "green.trauma": "Trauma", "green.maternal": "Critical maternal", "green.neonatal": "Critical neonatal", "green.other_critical": "Other critical",
  "direction.up": "Up", "direction.down": "Down",
  "risk.1": "Grade I (high risk)", "risk.2": "Grade II (medium risk)", "risk.3": "Grade III (low risk)",
  "transport.ambulance": "Ambulance", "transport.hospital_vehicle": "Hospital vehicle", "transport.self": "On their own", "transport.other": "Other",
  "escort.doctor": "Doctor", "escort.nurse": "Nurse", "escort.family": "Family", "escort.none": "Nobody",
  "sex.male": "Male", "sex.female": "Female", "sex.unknown": "Unknown",
  "schedule.bed": "Bed", "schedule.appointment": "Appointment",
  "reject.no_capacity": "No capacity", "reject.outside_scope": "Outside our scope", "reject.incomplete_information": "Incomplete information", "reject.not_indicated": "Not indicated", "reject.patient_declined": "Patient declined", "reject.other": "Other reason",
  "outcome.treated_outpatient": "Treated as outpatient", "outcome.discharged": "Admitted and discharged", "outcome.referred_back": "Referred back", "outcome.transferred_elsewhere": "Transferred elsewhere", "outcome.left_against_advice": "Left against advice", "outcome.died": "Died",
  "breach.claim": "Claim overdue", "breach.decide": "Decision overdue",
  "action.confirm": "OK", "action.cancel": "Cancel", "action.submit": "Submit", "action.claim": "Claim", "action.release": "Put back", "action.accept": "Accept", "action.reject": "Reject", "action.request_info": "Request information", "action.resubmit": "Answer and resubmit", "action.redirect": "Redirect", "action.schedule": "Schedule bed / appointment", "action.depart": "Patient departed", "action.arrive": "Patient arrived", "action.complete": "Complete with feedback", "action.close": "Read and close", "action.mark_no_show": "Mark no-show", "action.edit": "Edit", "action.create": "Create",
  "form.title_up": "New up-referral", "form.title_edit": "Edit referral {number}", "form.save_changes": "Save changes", "form.changes_saved": "Changes saved", "form.title_down": "New down-referral", "form.based_on": "Following ticket {number}", "form.down_summary_from": "Following up-referral {number}: ",
  "form.section.patient": "Patient", "form.section.consent": "Consent", "form.section.destination": "Destination", "form.section.clinical": "Condition and diagnoses", "form.section.transport": "Transport", "form.section.attachments": "Attachments",
  "form.search_name": "Find by name", "form.search_name_hint": "Start of the name, then Enter", "form.search_id": "Find by national ID", "form.search_id_hint": "The full 18-character number", "form.search": "Find",
  "form.patient_results": "Search results", "form.no_patient": "No patient found; register below", "form.change": "Change", "form.choose": "Choose…",
  "form.pick_patient_first": "Choose or register the patient first", "form.no_consent": "No valid consent to referral yet", "form.consent_recorded": "Consent recorded",
  "form.receiving_hospital": "Receiving hospital", "form.receiving_department": "Receiving department", "form.referring_department": "Our department",
  "form.green": "Green channel (critical)", "form.green_hint": "chest pain, stroke, trauma, critical maternal or neonatal", "form.green_category": "Green-channel category",
  "form.priority": "Priority", "form.transfer_risk": "Transfer risk grade", "form.transfer_risk_hint": "Grade I needs an ambulance with a doctor",
  "form.diagnoses": "Diagnoses (ICD-10)", "form.dx_placeholder": "Code or name, e.g. I21 or 心肌梗死", "form.dx_none": "No diagnosis yet", "form.dx_principal": "Principal", "form.dx_added": "Diagnosis {code} added", "form.dx_remove": "Remove diagnosis {code}", "form.dx_text": "Wording of diagnosis {code}",
  "form.reason": "Reason for referral", "form.summary": "Clinical summary", "form.treatment": "Treatment given",
  "form.transport_mode": "Transport", "form.transport_escort": "Escort", "form.window_from": "Receive from", "form.window_to": "Receive until",
  "form.files": "Upload files", "form.choose_files": "Choose files…", "form.files_hint": "PDF, JPEG, PNG or DICOM, up to 50 MiB each", "form.uploading": "Uploading {name}…", "form.uploaded": "{name} uploaded", "form.upload_failed": "Uploading {name} failed", "form.remove": "Remove",
  "form.save_draft": "Save draft", "form.submit": "Submit referral", "form.draft_saved": "Draft saved", "form.submitted": "Ticket {number} submitted",
  "patient.new": "Register a new patient", "patient.name": "Name", "patient.sex": "Sex", "patient.birth_date": "Date of birth", "patient.national_id": "National ID", "patient.phone": "Phone", "patient.address": "Address", "patient.register": "Register", "patient.registered": "Patient {name} registered",
  "consent.new": "Record a new consent", "consent.statement": "The patient (or guardian or relative) understands the purpose and risks of the referral, agrees to it and to sharing the records with the receiving hospital.", "consent.kind": "Given by", "consent.name": "Name of who consents", "consent.relationship": "Relationship to the patient", "consent.note": "Note", "consent.record": "Record consent",
  "consent.by.patient": "The patient", "consent.by.guardian": "Guardian", "consent.by.relative": "Relative",
  "ticket.draft_number": "(draft)", "ticket.details": "Referral", "ticket.patient": "Patient", "ticket.direction": "Direction", "ticket.from": "From", "ticket.to": "To", "ticket.transfer_risk": "Transfer risk", "ticket.transport": "Transport", "ticket.submitted_at": "Submitted",
  "ticket.claim_by": "Claim by", "ticket.decide_by": "Decide by", "ticket.window": "Receive between", "ticket.schedule": "Scheduled", "ticket.exam_slip": "Exam slip", "ticket.fee_waived": "registration fee waived", "ticket.bed": "Green-channel bed", "ticket.bed_held": "Reserved",
  "ticket.reject_reason": "Rejected because", "ticket.decision_note": "Desk's note", "ticket.info_question": "Asked", "ticket.info_answer": "Answer", "ticket.outcome": "Outcome", "ticket.end_reason": "Ended because",
  "ticket.redirected_to": "Redirected to", "ticket.redirected_from": "Redirected from", "ticket.based_on": "Follows", "ticket.open_linked": "Open the linked ticket",
  "ticket.diagnoses": "Diagnoses", "ticket.reason": "Reason for referral", "ticket.summary": "Clinical summary", "ticket.treatment": "Treatment given", "ticket.attachments": "Attachments",
  "ticket.actions": "Actions", "ticket.no_actions": "Nothing for you to do now", "ticket.you_hold": "You hold this ticket: decide it or put it back before leaving.", "ticket.held_until": "Yours until {at}, renewed while this page is open", "ticket.lease_pending": "Confirming your hold…", "ticket.history": "History", "ticket.escalations": "Escalations", "ticket.due": "due", "ticket.raised": "raised",
  "ticket.slip": "Print slip", "ticket.write_down": "Refer back down", "ticket.done": "{action}: now {status}", "ticket.lease_lost": "Your claim lapsed; the ticket went back to the queue",
  "dialog.reason_code": "Reason", "dialog.reason": "Note", "dialog.question": "What is missing", "dialog.answer": "Your answer", "dialog.schedule_kind": "Kind", "dialog.slot": "Bed or room", "dialog.slot_hint": "e.g. Cardiology ward 3 bed 12", "dialog.at": "Time",
  "dialog.outcome": "Outcome", "dialog.feedback": "Feedback to the referring hospital", "dialog.accept_note": "Note (optional)", "dialog.target_hospital": "Hospital", "dialog.target_department": "Department",
  "beds.title": "Reserved green-channel beds", "beds.summary": "{size} beds: {used} in use, {free} free", "beds.free": "free", "beds.held": "in use", "beds.for_this": "for this ticket", "beds.in_use_count": "{n} in use", "beds.unknown": "The bed pool could not be read", "beds.none_free": "No reserved bed is free: adjust the pool or call the department first", "beds.green_hint": "Accepting a green-channel patient reserves one bed.",
  "desk.title": "Referral board", "desk.queue": "Queue", "desk.counts": "{n} waiting · {green} green channel · {breached} overdue", "desk.claim_next": "Claim next", "desk.nothing_to_claim": "Nothing to claim", "desk.taken": "A colleague took this ticket",
  "desk.sound_on": "Sound: on", "desk.sound_off": "Sound: off", "desk.empty": "The queue is empty", "desk.breached": "Overdue", "desk.claim_in": "Claim within", "desk.decide_in": "Decide within", "desk.countdown": "Time left", "desk.waiting_since": "waiting since {at}",
  "desk.held_by_you": "You hold it", "desk.held_by_colleague": "A colleague holds it", "desk.continue": "Continue", "desk.green_arrived": "New green-channel ticket:", "desk.dismiss": "Dismiss", "desk.escalated": "{number} escalated",
  "desk.inbound": "On the way and arrived", "desk.no_inbound": "No accepted patient on the way",
  "stats.title": "Referral statistics", "stats.from": "From", "stats.to": "To", "stats.show": "Show", "stats.tickets": "Tickets", "stats.up": "Up", "stats.down": "Down", "stats.green": "Green channel", "stats.breaches": "Overdue",
  "stats.per_month": "Up- and down-referrals per month", "stats.time_to_decision": "Time from submission to decision, by priority", "stats.breaches_by_band": "Overdue tickets by priority", "stats.top_by_county": "Top up-referral diagnoses per county hospital",
  "stats.month": "Month", "stats.band": "Priority", "stats.median": "Median", "stats.p90": "90th percentile", "stats.n": "Tickets", "stats.no_data": "No data", "stats.show_table": "Show the figures", "stats.timing_legend": "bar: median; line: 90th percentile",
  "stats.hidden": "{n} more under {min} cases not shown",
  "unit.seconds": "{n} s", "unit.minutes": "{n} min", "unit.hours": "{n} h",
  "nav.clinic": "Remote clinics", "nav.incoming_sessions": "Session requests",
  "kind.consult": "Consultation", "kind.mdt": "MDT", "kind.teaching_round": "Teaching round", "kind.imaging_review": "Imaging review", "kind.expert_clinic": "Remote clinic",
  "sstatus.requested": "Requested", "sstatus.accepted": "Accepted", "sstatus.declined": "Declined", "sstatus.scheduled": "Scheduled", "sstatus.live": "Live", "sstatus.ended": "Ended", "sstatus.opinion_signed": "Opinion signed", "sstatus.acknowledged": "Acknowledged", "sstatus.cancelled": "Cancelled",
  "sevent.request": "Request", "sevent.book": "Booking", "sevent.draft_opinion": "Opinion draft saved", "sevent.accept": "Accept", "sevent.decline": "Decline", "sevent.schedule": "Set the time", "sevent.start": "Start", "sevent.end": "End", "sevent.sign_opinion": "Sign the opinion", "sevent.acknowledge": "Acknowledge", "sevent.cancel": "Cancel", "sevent.addendum": "Sign an addendum",
  "akind.image": "Image", "akind.pdf": "PDF", "akind.lab_result": "Lab result", "akind.dicom": "DICOM",
  "slot.published": "Open", "slot.booked": "Full", "slot.cancelled": "Cancelled",
  "scol.kind": "Kind", "scol.deadline": "Answer by / time",
  "sessions.incoming": "Requests received", "sessions.sent": "Requests sent", "sessions.invited": "Invited", "sessions.new": "Request a session", "sessions.left": "{time} left", "sessions.breach": "Overdue", "sessions.mine_only": "Mine only",
  "live.session_changed": "{kind} is now: {status}", "live.session_breach": "A {kind} request is overdue",
  "error.stale_session": "The session was changed by someone else and has been reloaded",
  "session.kind": "Kind", "session.requesting": "Requested by", "session.target": "Invited hospital", "session.target_departments": "Departments", "session.departments_hint": "An MDT needs at least two departments, the others one", "session.attendees": "Hospitals invited to attend", "session.question": "Question", "session.schedule": "Time", "session.specialists": "Specialists", "session.decline_reason": "Reason declined", "session.cancel_reason": "Reason cancelled", "session.acknowledged_at": "Acknowledged at", "session.history": "History", "session.escalations": "Escalations", "session.escalation": "Answer was due {due}, escalated {raised}", "session.requester": "Requesting doctor", "session.start": "Start", "session.end": "End", "session.new_title": "Request a remote session", "session.section.what": "Kind and invited side", "session.submit": "Send request", "session.requested": "Request sent", "session.files_hint": "PDF, JPEG, PNG or DICOM (.dcm)",
  "saction.accept": "Accept", "saction.decline": "Decline", "saction.schedule": "Set the time", "saction.start": "Start", "saction.end": "End", "saction.acknowledge": "Acknowledge", "saction.cancel": "Cancel request", "saction.join": "Join the room", "saction.assign": "Specialist for {dept} (account id)", "saction.assign_hint": "You by default; an MDT names one specialist per department", "saction.note": "Note", "saction.reason": "Reason",
  "opinion.title": "Opinion", "opinion.findings": "Findings", "opinion.impression": "Impression", "opinion.recommendations": "Recommendations", "opinion.referral_advised": "Referral advised", "opinion.department": "Department to refer to", "opinion.referral": "Referral", "opinion.referral_yes": "Referral advised to {dept}", "opinion.referral_no": "No referral needed", "opinion.signed": "Signed", "opinion.digest": "Signature digest", "opinion.sign": "Sign opinion", "opinion.sign_hint": "A signed opinion cannot be changed, only amended by signed addenda.", "opinion.sign_later": "It can be signed once the session ended; save a draft meanwhile.", "opinion.sign_confirm_title": "Sign the opinion", "opinion.sign_confirm": "It cannot be changed once signed. Sign it?", "opinion.signed_toast": "Opinion signed", "opinion.pending": "The opinion is not signed yet.", "opinion.draft_referral": "Draft the referral", "opinion.referral_drafted": "Referral drafted: check it and send it",
  "addenda.title": "Addenda", "addenda.none": "No addenda", "addenda.new": "New addendum", "addenda.sign": "Sign addendum", "addenda.signed": "Addendum signed",
  "consent.remote_consultation": "Consent to remote consultation", "consent.data_sharing": "Consent to share the record with {hospital}", "consent.present": "Present", "consent.missing": "Missing", "consent.new_for": "Record: {what}",
  "clinic.title": "Remote clinics", "clinic.slots": "Visible slots", "clinic.none": "No slots", "clinic.when": "When", "clinic.department": "Department", "clinic.places": "Free", "clinic.action": "Action", "clinic.book": "Book", "clinic.book_title": "Book a remote clinic", "clinic.booked": "Booked", "clinic.cancel": "Withdraw", "clinic.cancelled": "Slot withdrawn", "clinic.publish": "Publish a slot", "clinic.publish_hint": "Next week's slots must be published before this week's Monday (posted a week ahead).", "clinic.published": "Slot published", "clinic.capacity": "Places", "clinic.slot_gone": "This slot can no longer be booked", "clinic.back": "Back to the slots",
  "roompage.title": "Session room", "roompage.back": "Back to the session",
  "session.specialist_in": "{who} ({dept})", "session.event_reason": ": {reason}", "list.sep": ", ",
};

const catalogues = { "zh-CN": zh, en };
let current = catalogues[localStorage.getItem("duikou.lang")] ? localStorage.getItem("duikou.lang") : "zh-CN";

export function lang() { return current; }
export function setLang(l) {
  if (!catalogues[l]) return;
  current = l;
  localStorage.setItem("duikou.lang", l);
}
export function t(key, params) {
  let s = catalogues[current][key];
  if (s === undefined) {
    console.warn("i18n: missing " + current + " " + key);
    s = key;
  }
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (params[k] !== undefined ? String(params[k]) : m));
  return s;
}
export function keys(l) { return Object.keys(catalogues[l]); }

// applyStatic translates the fixed parts of index.html.
export function applyStatic() {
  document.documentElement.lang = current;
  const set = (id, key, attr) => { const el = document.getElementById(id); if (el) { if (attr) el.setAttribute(attr, t(key)); else el.textContent = t(key); } };
  set("skip-link", "app.skip");
  set("brand-name", "app.name");
  set("nav", "app.nav", "aria-label");
  set("lang-label", "app.language");
  set("logout", "app.logout");
}
