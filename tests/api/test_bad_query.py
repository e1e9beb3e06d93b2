"""Query parameters the contract run found answering 500: now bad input or an empty page."""


def _created(client, url, data):
    response = client.post(url, data, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_query_parameter_with_nul_is_refused(api_client):
    response = api_client.get("/api/v1/tags/?q=%E5%8F%A3%00", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"] == {"q": ["不能包含空字符（NUL）。"]}


def test_a_segment_cursor_past_every_member_number_is_the_end(api_client):
    group = _created(api_client, "/api/v1/tag-groups/", {"name": "偏好"})
    tag = _created(api_client, "/api/v1/tags/", {"group": group["id"], "name": "口红"})
    member = _created(api_client, "/api/v1/members/", {
        "name": "王芳", "identities": [{"kind": "phone", "value": "13900000001"}]})
    _created(api_client, f"/api/v1/members/{member['id']}/tags/", {"tag_id": tag["id"]})
    segment = _created(api_client, "/api/v1/segments/", {
        "name": "口红爱好者", "expression": {"all": [{"tag": tag["id"]}]}})
    url = f"/api/v1/segments/{segment['id']}/members/"

    assert [row["id"] for row in api_client.get(url).json()["results"]] == [member["id"]]
    past = api_client.get(url, {"after": 2**40})
    assert past.status_code == 200
    assert past.json() == {"count": 1, "next_after": None, "results": []}


def test_a_coupon_template_reference_with_nul_is_refused(api_client):
    response = api_client.post("/api/v1/coupons/issue/",
                               '{"member": 1, "template": "C\\u0000X"}',
                               content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_an_order_paid_before_1901_is_refused_and_a_later_one_shows_its_offset(api_client):
    """Before 1901 Shanghai had no standard time: such a date-time would come back with a
    local-mean-time offset (+08:05:43) that no RFC 3339 client parses."""
    order = {"order_no": "NO-OLD", "channel": "pos", "amount_fen": 1000,
             "buyer": {"identities": [{"kind": "phone", "value": "13900000002"}]},
             "lines": [{"sku": "S1", "product": "口红", "quantity": 1, "price_fen": 1000}]}
    old = api_client.post("/api/v1/orders/", {**order, "paid_at": "1900-12-31T23:00:00+08:00"},
                          format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert old.status_code == 400
    assert old.json()["errors"] == {"paid_at": ["日期时间须在 1901 年及以后。"]}

    kept = _created(api_client, "/api/v1/orders/",
                    {**order, "paid_at": "1901-01-01T08:00:00+08:00"})
    assert kept["paid_at"].endswith("+08:00")
