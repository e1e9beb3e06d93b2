def test_an_unknown_api_url_answers_the_json_error(api_client):
    response = api_client.get("/api/v1/members/-1/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "未找到。"}


def test_an_unknown_page_still_gets_the_site_page(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "404 · 私域 SCRM" in response.content.decode()
