"""ember-mqtt passes ember's receiver contract against a real Mosquitto broker (QoS 1, a
persistent session: at least once; ``fail()`` restarts the broker)."""

import pytest
from ember.sources import Delivery
from ember.testing.contracts import ReceiverContract
from ember_mqtt import MQTTSource


class TestMQTTSourceContract(ReceiverContract):
    @pytest.fixture
    def feed(self, mqtt_feed):
        return mqtt_feed  # publishes at QoS 1 on a real broker; fail() restarts the broker

    @pytest.fixture
    def source_factory(self, feed):
        return lambda: MQTTSource(feed.broker.url, feed.topic, clientId=feed.client_id,
                                  cleanSession=False, qos=1)

    @pytest.fixture
    def delivery(self):
        return Delivery.AT_LEAST_ONCE
